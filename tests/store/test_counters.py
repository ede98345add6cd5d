"""The store's counters on nx-27017: numbers added to, raised to the latest, names admitted
up to a cap."""

from __future__ import annotations

import threading

from pymongo.database import Database

from hook.store import TaskStore


def test_counters_add_up_under_their_key(db: Database) -> None:
    store = TaskStore(db)
    store.add("deliveries|delivered", {"n": 1})
    store.add("deliveries|delivered", {"n": 1})
    store.add("latency", {"count": 1, "sum": 0.5})
    counted = {c.key: c for c in store.counted()}
    assert counted["deliveries|delivered"].get("n") == 2
    assert counted["latency"].values == {"count": 1, "sum": 0.5}
    assert counted["latency"].get("le_1") == 0  # absent: never added to


def test_counters_keep_the_latest_of_a_number(db: Database) -> None:
    store = TaskStore(db)
    store.add("host|a:443", {"delivered": 1}, latest={"last_delivered_at": 20.0})
    store.add("host|a:443", {"delivered": 1}, latest={"last_delivered_at": 10.0})  # out of order
    store.add("host|a:443", {"retried": 1}, latest={"last_retried_at": 15.0})
    (counter,) = store.counted()
    assert counter.values == {
        "delivered": 2,
        "last_delivered_at": 20,
        "retried": 1,
        "last_retried_at": 15,
    }


def test_admit_takes_names_up_to_the_cap_even_when_processes_race(db: Database) -> None:
    store = TaskStore(db)
    assert store.admit("hosts", "a:443", 3) and store.admit("hosts", "a:443", 3)  # once only
    names = [f"h{n}.example:443" for n in range(12)]
    admitted: list[str] = []

    def admit(name: str) -> None:
        if store.admit("hosts", name, 3):
            admitted.append(name)

    threads = [threading.Thread(target=admit, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 2  # a:443 holds the first place
    assert all(store.admit("hosts", name, 3) == (name in admitted) for name in names)
    assert store.admit("hosts", "a:443", 3)
    assert [c.values for c in store.counted()] == [{"n": 3}]  # the names are no number
