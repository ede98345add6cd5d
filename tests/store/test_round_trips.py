"""hook.store.round_trips: one count per command the client sends, as the heartbeat says."""

from __future__ import annotations

from pymongo import MongoClient

from hook.store.embedded import EmbeddedMongo
from hook.store.round_trips import RoundTrips


def test_every_command_is_one_round_trip(mongo: EmbeddedMongo, db_name: str) -> None:
    trips = RoundTrips()
    client: MongoClient = MongoClient(mongo.uri, event_listeners=[trips])
    try:
        db = client[db_name]
        db.things.insert_one({"_id": 1})  # connecting and monitoring are not commands sent
        first = trips.count
        db.things.insert_many([{"_id": n} for n in range(2, 50)])  # one insert command
        db.things.find_one({"_id": 3})
        db.things.update_many({}, {"$set": {"seen": True}})
        assert trips.count - first == 3
        assert len(list(db.things.find({}, batch_size=10))) == 49  # a find and its getMores
        assert trips.count - first >= 3 + 5
    finally:
        client.drop_database(db_name)
        client.close()
