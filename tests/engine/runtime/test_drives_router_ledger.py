"""Drive bands, the homeostatic loop, the impulse router and the commitment ledger."""
import pytest

from engine.runtime.drives import DriveBand, HomeostaticLoop, IntrinsicDrive, default_drives
from engine.runtime.events import PRIORITY_USER
from engine.runtime.ledger import CommitmentLedger
from engine.runtime.router import ImpulseRouter, Target


def test_band_deviation_and_validation():
    band = DriveBand(0.2, 0.8)
    assert band.deviation(0.5) == 0.0
    assert band.deviation(0.1) == pytest.approx(0.1)
    assert band.deviation(1.0) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        DriveBand(1.0, 0.0)


def test_drive_urgency_weight_and_missing_metric():
    d = IntrinsicDrive("conf", "logit_entropy", DriveBand(0.0, 0.5), weight=3.0)
    assert d.urgency({"logit_entropy": 0.75}) == pytest.approx(0.75)
    assert d.urgency({}) == 0.0          # a metric not reported yet is in band, never a KeyError


def test_loop_picks_most_urgent_over_threshold_with_refractory():
    drives = [IntrinsicDrive("a", "x", DriveBand(0, 1), 1.0), IntrinsicDrive("b", "y", DriveBand(0, 1), 1.0)]
    loop = HomeostaticLoop(drives, threshold=0.1, refractory_s=10.0)
    assert loop.check({"x": 1.05, "y": 0.5}, now=0.0) is None        # under the threshold
    imp = loop.check({"x": 1.5, "y": 2.0}, now=1.0)
    assert imp.type == "Impulse" and imp.payload["drive"] == "b" and imp.payload["urgency"] == pytest.approx(1.0)
    nxt = loop.check({"x": 1.5, "y": 2.0}, now=2.0)                   # b is refractory: a fires
    assert nxt.payload["drive"] == "a"
    assert loop.check({"x": 1.5, "y": 2.0}, now=3.0) is None
    assert loop.check({"x": 1.5, "y": 2.0}, now=12.0) is not None


def test_impulse_priority_grows_with_urgency_below_user():
    loop = HomeostaticLoop([IntrinsicDrive("a", "x", DriveBand(0, 1))], refractory_s=0)
    low = loop.check({"x": 1.1}, now=0).priority
    high = loop.check({"x": 3.0}, now=1).priority
    huge = loop.check({"x": 1e9}, now=2).priority
    assert low < high < PRIORITY_USER and huge < PRIORITY_USER


def test_duplicate_drive_names_rejected_and_defaults_valid():
    d = IntrinsicDrive("a", "x", DriveBand(0, 1))
    with pytest.raises(ValueError):
        HomeostaticLoop([d, d])
    names = {d.name for d in default_drives()}
    assert {"memory_pressure", "low_confidence", "open_commitments", "idle", "unconsolidated"} <= names


def test_router_by_drive_urgency_and_learner_fallback():
    loop = HomeostaticLoop(default_drives(), refractory_s=0)
    r = ImpulseRouter()
    mild = loop.check({"memory_occupancy": 0.9}, now=0)
    severe = loop.check({"memory_occupancy": 1.0}, now=1)
    assert r.route(mild) is Target.CONSOLIDATION
    assert r.route(severe) is Target.MODEL
    assert r.route(loop.check({"logit_entropy": 1.0}, now=2)) is Target.MODEL
    unc = loop.check({"unconsolidated_writes": 5000}, now=3)
    assert r.route(unc) is Target.CONSOLIDATION
    assert ImpulseRouter(learner_attached=True).route(unc) is Target.LEARNER


def test_ledger_operations_are_events_and_never_raise():
    led = CommitmentLedger()
    a = led.open(text="remind at 5")
    assert a.type == "CommitmentOpened" and a.commitment_delta == 1 and led.open_count == 1
    dup = led.open(a.commitment_id)
    assert dup.type == "CommitmentError" and "already open" in dup.payload["reason"]
    b = led.open("b1", sender="other")
    assert b.type == "CommitmentOpened" and b.commitment_id == "b1"
    c = led.close()                                   # no id: the sender's ("model") latest
    assert c.type == "CommitmentClosed" and c.commitment_id == a.commitment_id
    unknown = led.close("nope")
    assert unknown.type == "CommitmentError" and unknown.payload["reason"] == "unknown commitment"
    assert led.close().commitment_id == "b1"          # nothing of mine left: any open one
    empty = led.close()
    assert empty.type == "CommitmentError" and led.open_count == 0
    assert led.apply(0) is None
    assert (led.opens, led.closes, led.closes_without_id, led.errors) == (2, 2, 2, 3)
    again = CommitmentLedger.from_dict(led.to_dict())
    assert again.to_dict() == led.to_dict()
    led.open("keep")
    assert list(CommitmentLedger.from_dict(led.to_dict()).open_items) == ["keep"]
