"""What central says to people, in their language: alert titles and bodies, digests, escalations, the visitor's
follow-up and the "you said, we did" sentences.

The texts are gettext messages in the catalogues the kiosk uses too (:mod:`smileloop_core.i18n`); message ids
are the English texts, so English needs no catalogue. Reasons show the kiosk's labels ("Waiting time",
"Väntetid"); times are in the site's zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from central.moderation import moderate
from central.records import Alert
from central.store import parse_time
from smileloop_core.i18n import N_, SOURCE_LANGUAGE, available_languages, translations
from smileloop_core.reasons import reason_label

STATES = {"open": N_("open"), "acknowledged": N_("acknowledged"), "resolved": N_("resolved"),
          "online": N_("online"), "offline": N_("offline"), "unknown": N_("unknown")}


def outcome_languages(site_language: str) -> list[str]:
    """The languages a "you said, we did" item is written in: the site's and every one with a catalogue, so a
    kiosk shows it in whichever language the visitor chose (English and Swedish at least)."""
    have = available_languages()
    return list(dict.fromkeys([*(lang for lang in [site_language] if lang in have), *have]))


class Texts:
    """Central's texts in ``lang`` (a language without a catalogue reads English), times in the zone ``tz``
    (as stored, in UTC, without one)."""

    def __init__(self, lang: str = SOURCE_LANGUAGE, tz: str | None = None, console_url: str | None = None) -> None:
        self.lang = lang
        self.tz = tz
        self.console_url = console_url
        catalogue = translations(lang)
        self._ = catalogue.gettext
        self.ngettext = catalogue.ngettext

    # --- small parts ----------------------------------------------------------------------------
    def when(self, ts: str | None) -> str:
        """A stored UTC time as the site's clock shows it ("Tue 24 Nov 11:00", "tis 24 nov. 11:00")."""
        moment = parse_time(ts)
        if moment is None:
            return "-"
        if self.tz is None:
            return str(ts)
        local = moment.astimezone(ZoneInfo(self.tz))
        if self.lang == SOURCE_LANGUAGE:
            return local.strftime("%a %d %b %H:%M")
        return _babel_time(local, self.lang)

    def duration(self, seconds: float) -> str:
        """``10 min``, or hours past two hours (``2.5 h``, ``2,5 h``)."""
        minutes = round(seconds / 60)
        if minutes < 120:
            return self._("{minutes} min").format(minutes=minutes)
        hours = f"{minutes / 60:.1f}"
        return self._("{hours} h").format(hours=hours if self.lang == SOURCE_LANGUAGE else hours.replace(".", ","))

    def reason(self, reason: str) -> str:
        return self._(reason_label(str(reason)))

    def reasons(self, counted: Any) -> str:
        pairs = counted.items() if isinstance(counted, dict) else counted or []
        return ", ".join(f"{self.reason(r)} ({n})" for r, n in pairs)

    def state(self, state: Any) -> str:
        return self._(STATES[state]) if state in STATES else str(state)

    # --- alerts ---------------------------------------------------------------------------------
    def title(self, alert: Alert) -> str:
        """The alert's title in this language; the stored (English) title for a kind or detail it does not know."""
        try:
            return self._title(str(alert.get("kind")), alert.get("detail") or {}, str(alert.get("site")),
                               str(alert.get("location") or "-"), str(alert.get("device_id") or "-"))
        except (KeyError, TypeError, ValueError):
            return str(alert["title"])

    def _title(self, kind: str, d: dict[str, Any], site: str, location: str, device: str) -> str:
        _ = self._
        where = f"{site} / {location}"
        if kind == "negative_rating":
            return _("Unhappy visitor at {where}").format(where=where)
        if kind == "backlog_arrived":
            top = self.reasons(d.get("top_reasons"))
            text = (_("{ratings} late ratings arrived from {where}, {negatives} unhappy — most often {reasons}")
                    if top else _("{ratings} late ratings arrived from {where}, {negatives} unhappy"))
            return text.format(ratings=d["ratings"], where=where, negatives=d["negatives"], reasons=top)
        if kind == "negative_share":
            share = f"{round(100 * d['negatives'] / d['responses'])} %"
            return _("{share} unhappy at {where} in the last {duration}").format(
                share=share, where=where, duration=self.duration(d["window"]))
        if kind == "negative_count":
            return _("{negatives} unhappy visitors at {where} in the last {duration}").format(
                negatives=d["negatives"], where=where, duration=self.duration(d["window"]))
        if kind == "low_index":
            return _("Satisfaction index {index} at {where}").format(index=f"{d['index']:.0f}", where=where)
        if kind == "happy_streak":
            return _("{run} happy visitors in a row at {where}!").format(run=d["run"], where=where)
        if kind == "promoter_burst":
            return _("{positives} delighted visitors at {where} in the last {duration}!").format(
                positives=d["positives"], where=where, duration=self.duration(d["window"]))
        if kind == "burst":
            return _("Suspicious burst of taps at {site} / {device}").format(site=site, device=device)
        if kind == "same_value":
            return _("The same answer {run} times in a row at {site} / {device}").format(
                run=d["run"], site=site, device=device)
        if kind == "recurring_reason":
            return _("'{reason}' again and again at {site}: {count} times today").format(
                reason=self.reason(d["reason"]), site=site, count=d["count"])
        if kind == "device_offline":
            return _("Device {device} at {site} is offline").format(device=device, site=site)
        if kind == "backlog":
            return _("Ratings piling up on {device} at {site}").format(device=device, site=site)
        if kind == "disk_low":
            return _("Disk almost full on {device} at {site}").format(device=device, site=site)
        if kind == "silence":
            return _("No taps at {site} / {device} for {duration} of opening time").format(
                site=site, device=device, duration=self.duration(d["silent_open_seconds"]))
        raise KeyError(kind)

    def facts(self, kind: str, d: dict[str, Any]) -> list[str]:
        """The lines that say what happened, per rule."""
        _ = self._
        if kind == "negative_share":
            return [_("{negatives} of {responses} responses unhappy in {minutes} min").format(
                negatives=d["negatives"], responses=d["responses"], minutes=d["window"] // 60)]
        if kind == "negative_count":
            return [_("{negatives} unhappy in {minutes} min").format(negatives=d["negatives"],
                                                                     minutes=d["window"] // 60)]
        if kind == "low_index":
            return [_("Satisfaction index {index} (alert below {below}) over {responses} responses").format(
                index=d["index"], below=f"{d['below']:g}", responses=d["responses"])]
        if kind == "silence":
            return [_("Last tap: {time} ({state})").format(time=self.when(d["last_tap"]),
                                                         state=self.state(d["device_state"])),
                    _("Usually a tap every {usual} min in opening hours; silent for {silent} open min").format(
                        usual=max(1, d["usual_gap_seconds"] // 60), silent=d["silent_open_seconds"] // 60),
                    _("Check the kiosk: frozen screen, blocked, switched off?")]
        if kind == "device_offline":
            backlog = d.get("backlog")
            return [_("Offline since {time} ({minutes} open min)").format(time=self.when(d["since"]),
                                                                         minutes=d["open_seconds_down"] // 60),
                    _("Ratings waiting on the device: {backlog}").format(
                        backlog=backlog if backlog is not None else self.state("unknown"))]
        if kind == "backlog":
            return [_("{backlog} ratings not delivered; oldest {minutes} min old").format(
                backlog=d["backlog"], minutes=d["oldest_age"] // 60)]
        if kind == "backlog_arrived":
            top = self.reasons(d.get("top_reasons"))
            unhappy = (_("{negatives} of them unhappy; most often: {reasons}") if top
                       else _("{negatives} of them unhappy")).format(negatives=d["negatives"], reasons=top)
            return [_("{ratings} ratings made from {start} to {end} arrived late (the device was offline)").format(
                        ratings=d["ratings"], start=self.when(d["oldest"]), end=self.when(d["newest"])),
                    unhappy, _("One summary instead of a page per rating; each rating is in the store")]
        if kind == "disk_low":
            return [_("{free} MB free (alert below {below} MB)").format(free=f"{d['disk_free_mb']:.0f}",
                                                                       below=f"{d['min_free_mb']:g}")]
        if kind == "burst":
            return [_("{taps} taps within {seconds} s ({time})").format(taps=d["taps"], seconds=f"{d['within']:g}",
                                                                       time=self.when(d["from"])),
                    _("Someone pressing for fun?")]
        if kind == "same_value":
            return [_("The value {value}, {run} times in a row within {seconds} s").format(
                        value=d["value"], run=d["run"], seconds=f"{d['seconds']:g}"),
                    _("Staff pressing for themselves, or a stuck button?")]
        if kind == "recurring_reason":
            where = ", ".join(f"{loc} ({n})" for loc, n in d["locations"].items())
            return [_("'{reason}' {count} times on {day}: a process to fix, not one unhappy visitor").format(
                        reason=self.reason(d["reason"]), count=d["count"], day=d["day"]),
                    _("Where: {where}").format(where=where)]
        if kind == "happy_streak":
            return [_("{run} positive ratings in a row").format(run=d["run"])]
        if kind == "promoter_burst":
            return [_("{positives} delighted visitors in {minutes} min").format(positives=d["positives"],
                                                                              minutes=d["window"] // 60)]
        lines = []
        if "value" in d:
            lines.append(_("Rating: {value} on {scale}").format(value=d["value"], scale=d.get("scale")))
        if d.get("reason"):
            lines.append(_("Reason: {reason}").format(reason=self.reason(d["reason"])))
        if d.get("comment"):
            lines.append(_("Comment: {comment}").format(comment=moderate(str(d["comment"]))))
        if d.get("rating_ts"):
            lines.append(_("At: {time}").format(time=self.when(d["rating_ts"])))
        return lines

    def alert(self, alert: Alert, purpose: str = "alert") -> tuple[str, str]:
        """Title and body as a site manager reads them on a phone."""
        _ = self._
        d = alert.get("detail") or {}
        kind = str(alert.get("kind"))
        title = self.title(alert)
        if purpose.startswith("reopened"):
            title = _("Back again: {title}").format(title=title)
        elif purpose.startswith("escalation"):
            title = _("Not yet handled: {title}").format(title=title)
        lines = [f"{alert.get('site')} / {alert.get('location') or alert.get('device_id') or '-'}"]
        try:
            lines += self.facts(kind, d)
        except (KeyError, TypeError, ValueError):  # a detail from an older central: show what there is
            lines += [f"{k}: {v}" for k, v in d.items()]
        if kind == "backlog_arrived":
            pass  # its facts name the reasons already
        elif d.get("top_reasons"):
            lines.append(_("Top reasons today: {reasons}").format(reasons=self.reasons(d["top_reasons"])))
        elif d.get("reasons"):
            lines.append(_("Reasons: {reasons}").format(reasons=self.reasons(d["reasons"])))
        if (alert.get("hits") or 1) > 1:
            lines.append(_("Seen {hits} times").format(hits=alert["hits"]))
        if alert.get("severity") != "kudos" and self.console_url:
            lines.append(_("Open it: {url}").format(url=f"{self.console_url.rstrip('/')}/alerts/{alert['id']}"))
        elif alert.get("severity") != "kudos":
            lines.append(_("Seen it: smileloop alerts ack {id} --by <you>").format(id=str(alert["id"])[:8]))
        else:
            lines.append(_("Well done, team!"))
        return title, "\n".join(lines)

    # --- digests, the follow-up, outcomes -------------------------------------------------------
    def digest_title(self, n: int) -> str:
        return self.ngettext("smileloop digest: {n} alert", "smileloop digest: {n} alerts", n).format(n=n)

    def digest_line(self, alert: Alert) -> str:
        return f"- {self.when(alert['opened_at'])} {self.title(alert)} ({self.state(alert['state'])}, " \
               f"{str(alert['id'])[:8]})"

    def followup_title(self) -> str:
        return self._("Thank you for your feedback")

    def outcome(self, alert: Alert, action: str) -> str:
        """"You said, we did" from the alert's reason (its label) and the action as typed: "You told us about
        waiting time: We opened a second till." / "Ni sa till om väntetid: …"."""
        d = alert.get("detail") or {}
        reason = d.get("reason") or (d.get("reasons") or d.get("top_reasons") or [[None]])[0][0]
        did = action.strip()
        if did and did[-1] not in ".!?":
            did += "."
        if reason:
            return self._("You told us about {reason}: {action}").format(reason=self.reason(reason).lower(),
                                                                          action=did)
        return self._("You told us your visit could be better: {action}").format(action=did)


def _babel_time(local: datetime, lang: str) -> str:
    from babel.dates import format_datetime

    try:
        return str(format_datetime(local, "EEE d MMM HH:mm", locale=lang))
    except ValueError:  # a language Babel does not know
        return local.strftime("%a %d %b %H:%M")
