// The server's detector families (GET /api/info's `families`): each one's title, summary,
// parameters and their defaults. A model says its family (GET /api/models' `family`); a server
// without families (an older one) serves MTCNN models only.

export const DEFAULT_FAMILY = "mtcnn";

// Titles for a server that does not describe its families.
const KNOWN_TITLES = { mtcnn: "MTCNN", centerface: "CenterFace" };

let families = new Map(); // name -> {name, title, summary, parameters, defaults}

/**
 * Keep the server's families.
 * @param {object[]|undefined} list GET /api/info's `families`; absent from older servers.
 * @returns {boolean} whether the server described any family.
 */
export function setFamilies(list) {
  const valid = (Array.isArray(list) ? list : []).filter(
    (family) => family && typeof family.name === "string" && Array.isArray(family.parameters),
  );
  families = new Map(valid.map((family) => [family.name, family]));
  return families.size > 0;
}

/** The family described by the server, or undefined. */
export function getFamily(name) {
  return families.get(name);
}

/** Every family the server described, in its order. */
export function allFamilies() {
  return [...families.values()];
}

/** A model's family name ("mtcnn" for a model of an older server, which does not say it). */
export function familyOf(model) {
  return (model && typeof model.family === "string" && model.family) || DEFAULT_FAMILY;
}

/** "CenterFace" for "centerface": the server's title, a known one, or the name itself. */
export function familyTitle(name) {
  const family = families.get(name);
  return (family && family.title) || KNOWN_TITLES[name] || name;
}

/** Where a family comes in lists: the server's order, families it did not describe last. */
export function familyRank(name) {
  const index = [...families.keys()].indexOf(name);
  if (index >= 0) return index;
  return name === DEFAULT_FAMILY ? -1 : families.size;
}
