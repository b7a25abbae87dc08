// Draws detected faces as an SVG overlay on top of the displayed image.
//
// The SVG's viewBox is the oriented image's pixel grid (the JSON's width x height), so the JSON's
// coordinates are used as they are and the browser scales them to the displayed size. Strokes do
// not scale (vector-effect), so boxes stay crisp at any zoom.

const SVG_NS = "http://www.w3.org/2000/svg";
const LANDMARKS = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"];

function svg(tag, attributes) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/** A face probability with four decimals, e.g. 0.999892 -> "0.9999". */
export function formatScore(score) {
  return Number(score).toFixed(4);
}

/**
 * Replace the overlay's content with the faces of a detection result.
 * @param {SVGSVGElement} overlay
 * @param {{width: number, height: number, faces: object[]}} result
 * @param {{landmarks: boolean, quiet: boolean}} options quiet: outlines only on hover/focus.
 */
export function drawFaces(overlay, result, { landmarks, quiet }) {
  overlay.replaceChildren();
  overlay.setAttribute("viewBox", `0 0 ${result.width} ${result.height}`);
  overlay.setAttribute("preserveAspectRatio", "none");
  overlay.classList.toggle("quiet", quiet);
  result.faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.box;
    const group = svg("g", {
      class: "face",
      tabindex: 0,
      role: "img",
      "data-index": index,
      "data-score": face.score,
      "aria-label": `Face ${index + 1}: score ${formatScore(face.score)}`,
    });
    group.append(svg("rect", {
      class: "box", x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1),
    }));
    if (landmarks && face.landmarks) {
      const radius = Math.max(1, Math.min(x2 - x1, y2 - y1) / 40);
      for (const name of LANDMARKS) {
        const point = face.landmarks[name];
        if (!point) continue;
        group.append(svg("circle", {
          class: `landmark ${name}`, cx: point[0], cy: point[1], r: radius,
        }));
      }
    }
    overlay.append(group);
  });
}

/**
 * Show the score tooltip for a face group while it is hovered or focused.
 * @param {SVGSVGElement} overlay
 * @param {HTMLElement} tooltip positioned absolutely inside the overlay's parent.
 */
export function attachTooltip(overlay, tooltip) {
  const frame = overlay.parentElement;
  let current = null;

  function show(group) {
    if (!group) return;
    current = group;
    const index = Number(group.dataset.index);
    tooltip.textContent = `Face ${index + 1} · score ${formatScore(group.dataset.score)}`;
    tooltip.hidden = false;
    const box = group.querySelector(".box").getBoundingClientRect();
    const origin = frame.getBoundingClientRect();
    const left = Math.min(Math.max(0, box.left - origin.left),
                          Math.max(0, origin.width - tooltip.offsetWidth));
    const above = box.top - origin.top - tooltip.offsetHeight - 4;
    const top = above >= 0 ? above : box.bottom - origin.top + 4;
    tooltip.style.left = `${left}px`;
    tooltip.style.top = `${top}px`;
    group.classList.add("active");
  }

  function hide(group) {
    if (group && group !== current) return;
    if (current) current.classList.remove("active");
    current = null;
    tooltip.hidden = true;
  }

  const faceOf = (event) => event.target.closest && event.target.closest(".face");
  overlay.addEventListener("pointerover", (event) => show(faceOf(event)));
  overlay.addEventListener("pointerout", (event) => {
    const to = event.relatedTarget && event.relatedTarget.closest
      ? event.relatedTarget.closest(".face") : null;
    if (to !== current) hide(faceOf(event));
  });
  overlay.addEventListener("focusin", (event) => show(faceOf(event)));
  overlay.addEventListener("focusout", (event) => hide(faceOf(event)));
  return { hide: () => hide(null) };
}

/**
 * Paint an image and the faces into a canvas at the image's full resolution (for download).
 * @param {HTMLImageElement} image a loaded, oriented image of result.width x result.height.
 * @returns {Promise<Blob>} a PNG.
 */
export function composeAnnotated(image, result, { landmarks }) {
  const canvas = document.createElement("canvas");
  canvas.width = result.width;
  canvas.height = result.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, result.width, result.height);
  const line = Math.max(1, Math.round(Math.max(result.width, result.height) / 500));
  context.lineWidth = line;
  for (const face of result.faces) {
    const [x1, y1, x2, y2] = face.box;
    context.strokeStyle = "#00ff00";
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (!landmarks || !face.landmarks) continue;
    context.fillStyle = "#ff3b30";
    const radius = Math.max(1, Math.min(x2 - x1, y2 - y1) / 40);
    for (const name of LANDMARKS) {
      const point = face.landmarks[name];
      if (!point) continue;
      context.beginPath();
      context.arc(point[0], point[1], radius, 0, 2 * Math.PI);
      context.fill();
    }
  }
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("canvas export failed"))),
                  "image/png");
  });
}
