"""The store: the only code that knows the MongoDB collections and their documents' shapes.

    tasks      one document per event: status, lease, attempts, labels once computed (the
               body as `result_json`, the label names as the list `labels`)
    images     one document per image of a task (its bytes), until the task is done, or
               while pictures are on until its `pictures_until`, for drawing its pictures
    workers    one heartbeat per worker process
    counters   the figures /metrics shows
    pictures   one annotated JPEG per image of a task, drawn when first asked for, kept a while
    (a failed task's failure report, owed or settled, is its `report` sub-document)

Contract (huey's storage, with leases), by part:
    Intake      enqueue(event) -> (task id, created?); duplicates map to the first task, a
                failed task sent again is queued again
    Leases      claim (ONE atomic find_one_and_update), renew, release, save_result,
                complete, reschedule, fail, requeue_expired; every method
                taking `worker` acts only while that worker holds the lease
    Batches     claim_many (a find, one bulk update), load_images (a task's), load_images_of
                (one query for several tasks), complete_many (one bulk update, one delete):
                a lease per task still
    Reading     get, pending, page (events filtered by camera, label, status and paged
                by id), oldest_pending, stats, retrying: never image bytes
    Retention   purge (finished tasks past retention), purge_orphans (images of no task)
    Heartbeats  beat, workers, forget_workers
    Counters    add (numbers added to, or raised to the latest), add_many (several keys in
                one round trip), admit (the first names
                under a key, up to a cap, decided atomically), counted
    Pictures    save_picture(s) (upserts), picture, picture_indexes (those drawn), original
                (an image's bytes while kept), drop_kept_images (a done task's images past
                its `pictures_until`), purge_pictures (made before a time), drop_pictures
    Operations  retry_failed (failed tasks queued again, to be labeled again), forget (tasks
                removed with their images and pictures); each guarded per task, reported by id
    Reports     claim_report (ONE atomic find_one_and_update, with a lease), settle_report,
                requeue_expired_reports: the outbox of failure reports, owed by `fail`
    Feed        streams_changes, watch_queued: the change stream of tasks made queued

Portability (real MongoDB and the embedded nx-27017): times are float epoch seconds, because
nx-27017 stores a datetime written by `$set` as text, which then no longer compares; ids are
strings, because nx-27017 cannot match an ObjectId outside `_id`; image bytes live in their
own collection so task documents stay small and the sorted claim stays fast. The store also
starts the embedded server (`embedded`) and counts a client's round trips (`round_trips`).

May import: nothing of hook but the shared bottom (what it takes in, it takes by shape).
"""

from hook.store.batches import Batches
from hook.store.counters import Counters
from hook.store.feed import Feed
from hook.store.heartbeats import Heartbeats
from hook.store.intake import Intake
from hook.store.leases import Leases
from hook.store.operations import Operations
from hook.store.pictures import Pictures
from hook.store.reading import Reading
from hook.store.records import Counter, Heartbeat, Page
from hook.store.reports import Reports
from hook.store.retention import Retention


class TaskStore(
    Intake,
    Leases,
    Batches,
    Reading,
    Retention,
    Heartbeats,
    Counters,
    Operations,
    Pictures,
    Reports,
    Feed,
):
    """The queue and its companions over one pymongo Database; it never builds its own client."""


__all__ = ["Counter", "Heartbeat", "Page", "TaskStore"]
