"""The notifier forgets what it no longer needs: memory stays bounded however many alerts pass.

Each deploy brings instances with new ids, so alerts labelled by instance are new label sets
every time; once resolved and notified they must go, and notification log entries must go
after five days, from memory as from the store.
"""

from __future__ import annotations

from datetime import timedelta

from zerodown.monitor.config import default_routing
from zerodown.monitor.notifier import Notifier
from zerodown.ops.alerts import Alert, AlertState
from zerodown.ops.routing import Notification
from zerodown.ops.series import label_set
from zerodown.testing import FrozenClock, MemoryStore

DAYS = timedelta(days=1)


def alert(clock: FrozenClock, instance: str, *, resolved: bool) -> Alert:
    now = clock.now()
    return Alert(
        rule="InstanceDown",
        labels=label_set({"alertname": "InstanceDown", "service": "web", "instance": instance}),
        annotations=(),
        state=AlertState.INACTIVE if resolved else AlertState.FIRING,
        value=1.0,
        active_at=now - timedelta(minutes=5),
        fired_at=now - timedelta(minutes=4),
        resolved_at=now if resolved else None,
        last_sent_at=now,
        keep_firing_since=None,
        valid_until=now + timedelta(minutes=4),
    )


def test_resolved_alerts_and_old_log_entries_are_forgotten_in_memory_and_store() -> None:
    clock = FrozenClock()
    store = MemoryStore(clock=clock)
    sent: list[Notification] = []
    notifier = Notifier(clock=clock, records=store, send=lambda n: sent.append(n) or True)
    notifier.configure("web", default_routing(["http://127.0.0.1:9/hook"]))
    for deploy in range(20):
        instance = f"web-{deploy}"
        notifier.submit("web", [alert(clock, instance, resolved=False)])
        notifier.step()
        clock.advance(300)
        notifier.submit("web", [alert(clock, instance, resolved=True)])
        notifier.step()
        clock.advance(600)
        notifier.step()
    assert [n.status for n in sent].count("resolved") == 20
    assert notifier.held("web") == (20, 1)
    notifier.forget_log(before=clock.now() - 5 * DAYS)
    notifier.step()
    assert notifier.held("web") == (0, 1)  # resolved and notified: dropped
    clock.advance(6 * 86400)
    notifier.forget_log(before=clock.now() - 5 * DAYS)
    notifier.step()
    assert notifier.held("web") == (0, 0)
    assert store.notification_log() == []
