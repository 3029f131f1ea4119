"""Property tests of :mod:`scheduler`: a hypothesis state machine against a plain model.

The model keeps where every message is and what every relay sent; each step
drives scheduler and model alike and, like the gateway, asks for dispatches
after every event. Checked: nothing lost or reported gone twice; every message
where the model puts it (never on two relays); in-flight windows and rate
limits held; dispatches only to online, enabled relays of the right account
(the pinned one, never one that failed it, one with the SIM slot ready), least loaded,
with no better message of the account placeable instead; no placeable work left waiting;
expiry reasons; ``next_wakeup`` never sleeping past work that time alone frees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from scheduler import DeviceLimits, Dispatch, Priority, Scheduler, Work
from scheduler.rate_window import DAY_SECONDS, MINUTE_SECONDS

from .scheduler_fakes import FakeClock

ACCOUNT_OF_DEVICE = {"d0": "a", "d1": "a", "d2": "b"}
DEVICES = sorted(ACCOUNT_OF_DEVICE)
ACCOUNTS = ["a", "b", "c"]  # "c" has no relay at all
MAX_ATTEMPTS = 3
MOSTLY_FALSE = st.sampled_from([False, False, False, True])

NewMessage = tuple[str, Priority, str | None, float, int | None]
new_message = st.tuples(
    st.sampled_from(["a", "a", "b", "c"]),
    st.sampled_from(Priority),
    # Mostly unpinned; pins to its own relays, another account's relay or one never paired.
    st.sampled_from([None, None, None, None, "d0", "d1", "d2", "ghost"]),
    st.sampled_from([3_600.0, 300.0, 60.0, 5.0, 200_000.0]),
    st.sampled_from([None, None, None, 0, 1]),
)
"""``(account, priority, pinned device, time to live, SIM slot)`` of a message to enqueue."""
ready_slots = st.sampled_from([None, None, frozenset({0}), frozenset({0, 1}), frozenset({1}), frozenset()])
"""SIM slots a relay reports ready (None: never reported)."""

limits_strategy = st.builds(
    DeviceLimits,
    max_in_flight=st.integers(1, 4),
    per_minute=st.integers(1, 5),
    per_day=st.none() | st.integers(2, 12),
)


@dataclass
class ModelRelay:
    """What the model knows of a relay."""

    account: str
    limits: DeviceLimits
    enabled: bool
    online: bool = False
    removed: bool = False
    ready: frozenset[int] | None = None
    sent: list[float] = field(default_factory=list)

    def minute_count(self, now: float) -> int:
        return sum(1 for t in self.sent if t + MINUTE_SECONDS > now)

    def day_count(self, now: float) -> int:
        """Dispatches counted for the day: whole minute buckets, as the scheduler counts."""
        return sum(
            1 for t in self.sent if (int(t // MINUTE_SECONDS) + 1) * MINUTE_SECONDS + DAY_SECONDS > now
        )

    def rate_ok(self, now: float) -> bool:
        if self.minute_count(now) >= self.limits.per_minute:
            return False
        return self.limits.per_day is None or self.day_count(now) < self.limits.per_day

    def rate_opens_at(self, now: float) -> float:
        """Earliest time, ``now`` or later, when rate_ok turns true with no more dispatches."""
        leave_times = {t + MINUTE_SECONDS for t in self.sent} | {
            (int(t // MINUTE_SECONDS) + 1) * MINUTE_SECONDS + DAY_SECONDS for t in self.sent
        }
        for moment in sorted(leave_times | {now}):
            if moment >= now and self.rate_ok(moment):
                return moment
        raise AssertionError("rate window never opens")


@dataclass
class ModelMessage:
    """What the model knows of a message."""

    work: Work
    seq: int
    state: str = "queued"
    device: str | None = None
    excluded: set[str] = field(default_factory=set)
    attempts: int = 0
    failures: int = 0
    saw_relay: bool = False
    """A relay of its account was usable at some moment since it was enqueued."""

    @property
    def key(self) -> tuple[int, int]:
        return (int(self.work.priority), self.seq)


class SchedulerMachine(RuleBasedStateMachine):
    """Drives a Scheduler and a model with the same random events and compares them."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(now=1_000_000.0)
        self.scheduler = Scheduler(self.clock, max_attempts=MAX_ATTEMPTS)
        self.relays: dict[str, ModelRelay] = {}
        self.messages: dict[str, ModelMessage] = {}
        self.gone: Counter[str] = Counter()
        self.enqueued: set[str] = set()
        self.counter = 0
        self.tick_limit = 1_000

    # -- model -----------------------------------------------------------------

    def load(self, device: str) -> int:
        return sum(1 for m in self.messages.values() if m.device == device)

    def usable(self, device: str) -> bool:
        relay = self.relays[device]
        return not relay.removed and relay.online and relay.enabled and relay.ready != frozenset()

    def can_take(self, device: str) -> bool:
        relay = self.relays[device]
        return (
            self.usable(device)
            and self.load(device) < relay.limits.max_in_flight
            and relay.rate_ok(self.clock.now)
        )

    def may_go_to(self, message: ModelMessage, device: str) -> bool:
        relay = self.relays.get(device)
        return (
            relay is not None
            and not relay.removed
            and relay.account == message.work.account_id
            and message.work.pinned_device in (None, device)
            and device not in message.excluded
            and (message.work.sim_slot is None or relay.ready is None or message.work.sim_slot in relay.ready)
        )

    def account_usable(self, account: str) -> bool:
        return any(self.usable(d) for d in DEVICES if ACCOUNT_OF_DEVICE[d] == account)

    def note_usable_relays(self) -> None:
        """Remember, for every tracked message, that its account has a usable relay now."""
        for message in self.messages.values():
            if self.account_usable(message.work.account_id):
                message.saw_relay = True

    def placeable_now(self, message: ModelMessage) -> bool:
        return any(self.may_go_to(message, d) and self.can_take(d) for d in DEVICES)

    def ids(self, predicate: Callable[[ModelMessage], bool]) -> list[str]:
        """Ids of the tracked messages matching ``predicate``, in enqueue order."""
        chosen = sorted((m for m in self.messages.values() if predicate(m)), key=lambda m: m.seq)
        return [m.work.message_id for m in chosen]

    def forget(self, message_id: str) -> None:
        del self.messages[message_id]
        self.gone[message_id] += 1

    def requeue(self, message_id: str) -> None:
        message = self.messages[message_id]
        message.state, message.device = "queued", None

    # -- the gateway's tick ------------------------------------------------------

    def tick(self, limit: int | None = None) -> None:
        """Ask for dispatches, check each one, and check nothing placeable was left behind."""
        limit = self.tick_limit if limit is None else limit
        self.note_usable_relays()
        dispatches = self.scheduler.next_dispatches(limit)
        assert len(dispatches) <= limit
        for dispatch in dispatches:
            self.check_and_apply(dispatch)
        if len(dispatches) < limit:
            stranded = self.ids(lambda m: m.state == "queued" and self.placeable_now(m))
            assert not stranded, f"placeable work left queued: {stranded}"

    def check_and_apply(self, dispatch: Dispatch) -> None:
        now = self.clock.now
        message = self.messages[dispatch.message_id]
        device = dispatch.device_id
        assert message.state == "queued"
        assert self.may_go_to(message, device), (message, device)
        assert self.can_take(device), device
        better = self.ids(
            lambda other: (
                other.state == "queued"
                and other.work.account_id == message.work.account_id
                and other.key < message.key
                and self.placeable_now(other)
            )
        )
        assert not better, f"{dispatch} went before {better}"
        if message.work.pinned_device is None:
            loads = [self.load(d) for d in DEVICES if self.may_go_to(message, d) and self.can_take(d)]
            assert self.load(device) == min(loads)
        message.state, message.device = "assigned", device
        message.attempts += 1
        assert dispatch.attempt == message.attempts
        relay = self.relays[device]
        relay.sent.append(now)
        assert relay.minute_count(now) <= relay.limits.per_minute
        assert relay.limits.per_day is None or relay.day_count(now) <= relay.limits.per_day

    # -- events ------------------------------------------------------------------

    @initialize(
        limits=st.lists(limits_strategy, min_size=3, max_size=3),
        disabled=st.lists(MOSTLY_FALSE, min_size=3, max_size=3),
        offline=st.lists(MOSTLY_FALSE, min_size=3, max_size=3),
        backlog=st.lists(new_message, min_size=4, max_size=20),
        tick_limit=st.sampled_from([1_000, 1, 2]),
    )
    def start(
        self,
        limits: list[DeviceLimits],
        disabled: list[bool],
        offline: list[bool],
        backlog: list[NewMessage],
        tick_limit: int,
    ) -> None:
        self.tick_limit = tick_limit
        for device, device_limits, off, down in zip(DEVICES, limits, disabled, offline, strict=True):
            account = ACCOUNT_OF_DEVICE[device]
            self.scheduler.upsert_device(device, account, enabled=not off, limits=device_limits)
            self.relays[device] = ModelRelay(account, device_limits, enabled=not off)
            if not down:
                self.scheduler.set_online(device)
                self.relays[device].online = True
        self.enqueue(backlog)

    @rule(batch=st.lists(new_message, min_size=1, max_size=10))
    def enqueue(self, batch: list[NewMessage]) -> None:
        for account, priority, pin, ttl, slot in batch:
            self.counter += 1
            message_id = f"m{self.counter}"
            work = Work(message_id, account, priority, self.clock.now + ttl, pinned_device=pin, sim_slot=slot)
            self.scheduler.enqueue(work)
            self.messages[message_id] = ModelMessage(work, self.counter)
            self.enqueued.add(message_id)
        self.tick()

    @rule(limit=st.sampled_from([1, 2, 1_000]))
    def extra_tick(self, limit: int) -> None:
        self.tick(limit)

    @precondition(lambda self: bool(self.messages))
    @rule(data=st.data(), other_device=st.none() | st.sampled_from(DEVICES))
    def ack(self, data: st.DataObject, other_device: str | None) -> None:
        """Ack a message, assigned ones first; sometimes from a relay other than its own."""
        candidates = self.ids(lambda m: m.state == "assigned") + self.ids(lambda m: m.state != "assigned")
        message = self.messages[data.draw(st.sampled_from(candidates))]
        device = other_device or message.device or "d0"
        expected = message.state == "assigned" and message.device == device
        assert self.scheduler.acked(message.work.message_id, device) == expected
        if expected:
            message.state = "acked"
        self.tick()

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        """Finish a message, in-flight ones first; sometimes a queued, gone or unknown one."""
        in_flight = self.ids(lambda m: m.state != "queued")
        queued = self.ids(lambda m: m.state == "queued")
        gone = sorted(self.enqueued - set(self.messages))
        message_id = data.draw(st.sampled_from([*in_flight, *queued, *gone, "unknown"]))
        assert self.scheduler.finished(message_id) == (message_id in self.messages)
        if message_id in self.messages:
            self.forget(message_id)
        self.tick()

    @precondition(lambda self: any(m.state != "queued" for m in self.messages.values()))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(self.ids(lambda m: m.state != "queued")))
        message = self.messages[message_id]
        message.failures += 1
        if message.failures >= MAX_ATTEMPTS:
            assert not self.scheduler.retry(message_id)
            self.forget(message_id)
        else:
            assert self.scheduler.retry(message_id)
            assert message.device is not None
            if message.work.pinned_device is None:
                message.excluded.add(message.device)
            self.requeue(message_id)
        self.tick()

    @rule(device=st.sampled_from(DEVICES), down=MOSTLY_FALSE)
    def connectivity(self, device: str, down: bool) -> None:
        """A relay connects or disconnects; going down requeues exactly its unacked messages."""
        relay = self.relays[device]
        if down:
            expected = self.ids(lambda m: m.state == "assigned" and m.device == device)
            assert self.scheduler.set_offline(device) == expected
            relay.online = False
            for message_id in expected:
                self.requeue(message_id)
        elif not relay.removed:
            self.scheduler.set_online(device)
            relay.online = True
        self.tick()

    @rule(device=st.sampled_from(DEVICES), ready=ready_slots)
    def sims(self, device: str, ready: frozenset[int] | None) -> None:
        """A relay reports which SIM slots are ready (an empty set: none, so no work)."""
        relay = self.relays[device]
        if not relay.removed:
            self.scheduler.set_sims(device, ready)
            relay.ready = ready
        self.tick()

    @rule(device=st.sampled_from(DEVICES), disabled=MOSTLY_FALSE)
    def set_enabled(self, device: str, disabled: bool) -> None:
        relay = self.relays[device]
        if not relay.removed:
            relay.enabled = not disabled
            self.scheduler.upsert_device(device, relay.account, enabled=relay.enabled, limits=relay.limits)
        self.tick()

    @rule(device=st.sampled_from(DEVICES))
    def remove_or_repair(self, device: str) -> None:
        """Unpair a relay (unacked requeued, acked orphaned), or pair a removed one again."""
        relay = self.relays[device]
        if relay.removed:
            self.scheduler.upsert_device(device, relay.account, enabled=relay.enabled, limits=relay.limits)
            self.relays[device] = ModelRelay(relay.account, relay.limits, relay.enabled)
        else:
            requeued = self.ids(lambda m: m.state == "assigned" and m.device == device)
            orphaned = self.ids(lambda m: m.state == "acked" and m.device == device)
            assert self.scheduler.remove_device(device) == (requeued, orphaned)
            relay.removed, relay.online = True, False
            for message_id in requeued:
                self.requeue(message_id)
            for message_id in orphaned:
                self.forget(message_id)
        self.tick()

    @rule(
        seconds=st.sampled_from([1.0, 10.0, 30.0, 0.5, 1.0, 10.0, 30.0, 59.0, 60.0, 61.0, 600.0, DAY_SECONDS])
    )
    def advance_and_expire(self, seconds: float) -> None:
        """Time passes; due messages expire with the right reason; then the gateway ticks."""
        self.clock.now += seconds
        now = self.clock.now
        expected = {}
        for message in self.messages.values():
            if message.work.expires_at > now:
                continue
            if message.state == "acked":
                reason = "relay_timeout"
            elif message.state == "assigned" or message.attempts > 0 or message.saw_relay:
                reason = "expired"
            else:
                reason = "no_device"
            expected[message.work.message_id] = reason
        got = {expiry.message_id: expiry.reason for expiry in self.scheduler.expire_due()}
        assert got == expected
        for message_id in expected:
            self.forget(message_id)
        self.tick()

    @rule()
    def wakeup_never_oversleeps(self) -> None:
        """After a full tick, next_wakeup is no later than the first moment time alone frees work."""
        self.tick(1_000)
        now = self.clock.now
        moments = [m.work.expires_at for m in self.messages.values()]
        for device, relay in self.relays.items():
            if (
                not self.usable(device)
                or self.load(device) >= relay.limits.max_in_flight
                or relay.rate_ok(now)
            ):
                continue
            if any(m.state == "queued" and self.may_go_to(m, device) for m in self.messages.values()):
                moments.append(relay.rate_opens_at(now))
        wakeup = self.scheduler.next_wakeup()
        if moments:
            assert wakeup is not None and wakeup <= min(moments)
        else:
            assert wakeup is None

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def nothing_lost_nothing_twice(self) -> None:
        """Every enqueued message is tracked, or was reported gone exactly once."""
        for message_id in self.enqueued:
            tracked = self.scheduler.location(message_id) is not None
            assert tracked == (message_id in self.messages)
            assert self.gone[message_id] == (0 if tracked else 1)

    @invariant()
    def locations_match_model(self) -> None:
        """Every message is where the model puts it (so on one relay at most); counters agree."""
        for message_id, message in self.messages.items():
            assert self.scheduler.location(message_id) == (message.state, message.device)
        queued = [m for m in self.messages.values() if m.state == "queued"]
        assert self.scheduler.queue_depth() == len(queued)
        for account in ACCOUNTS:
            assert self.scheduler.queue_depth(account) == sum(
                1 for m in queued if m.work.account_id == account
            )
        assert self.scheduler.in_flight() == len(self.messages) - len(queued)

    @invariant()
    def windows_hold(self) -> None:
        """No relay carries more than max_in_flight messages."""
        for device, relay in self.relays.items():
            assert self.scheduler.device_load(device) == self.load(device)
            assert self.load(device) <= relay.limits.max_in_flight


# 100 random sequences of up to 50 events each (5,000 events), every invariant checked after
# every event; hypothesis draws new sequences each run. 200 made this one of the suite's
# longest CPU-bound tests (over a minute on a loaded machine).
SchedulerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestSchedulerMachine = SchedulerMachine.TestCase
TestSchedulerMachine.__doc__ = "Random event sequences keep every scheduler invariant."
