"""Jobs: many images handed over at once, worked through in the background, results kept for a
while, the end announced by a signed webhook. The durable queue is :mod:`.store`; the worker
and the HTTP API live in the service (:mod:`facefaas.server.jobs`,
:mod:`facefaas.server.routes.jobs`)."""

from facefaas.jobs.store import ClaimedItem, DueWebhook, JobInput, JobStore, NewJob, hash_token

__all__ = ["ClaimedItem", "DueWebhook", "JobInput", "JobStore", "NewJob", "hash_token"]
