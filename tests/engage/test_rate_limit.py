"""A channel's rate limit spreads sends over time and drops none: a row held to its slot goes when the slot comes,
without reserving a new one (it starved behind its own reservations before)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.engage.conftest import Env, Person
from tests.engage.test_delivery_rules import Driver, one_send, rows
from userloop.engage.channels.registry import save_channel


# rate limits ------------------------------------------------------------------------------------------------------
def test_a_channels_rate_limit_spreads_sends_over_time_and_drops_none(env: Env) -> None:
    rate = 2.0
    save_channel(env.meta, env.info.id, "mail", "email", "smtp",
                 {"host": "127.0.0.1", "port": env.sink.port, "sender": "ops@example.com"}, env.box,
                 rate_per_second=rate)  # fmt: skip
    people = [Person(f"r{i:02d}") for i in range(12)]
    env.add_people(people)
    env.rules(caps=[], quiet_hours=None)
    at = datetime(2026, 6, 1, 2, 0)
    jid = one_send(env, "flash sale", at)
    drive = Driver(env)
    drive.enter(jid, [p.did for p in people], at)
    step = timedelta(milliseconds=100)
    now = at
    while now <= at + timedelta(seconds=10):
        drive.deliver(now)
        now += step
    done = sorted(r.done_at for r in rows(env, jid) if r.status == "sent" and r.done_at is not None)
    assert len(done) == len(people)
    burst = int(rate)
    # token bucket: any j sends after the i-th need at least (j - i - (burst - 1)) / rate seconds
    for i in range(len(done)):
        for j in range(i + 1, len(done)):
            need = max(0.0, (j - i - (burst - 1)) / rate)
            assert (done[j] - done[i]).total_seconds() >= need - 1e-6, (i, j, done[i], done[j])
    # and nothing waits much longer than the rate requires (passes are 100 ms apart)
    assert done[-1] - at <= timedelta(seconds=(len(people) - burst) / rate) + step
    assert len(env.mail()) == len(people) and sum(env.mail_to().values()) == len(people)
