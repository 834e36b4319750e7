"""Names of timeline events and return reasons as the portal shows them (msgids, translated at render)."""

from wecity.web.i18n import N_

EVENT_LABELS = {
    "submitted": N_("Case opened"),
    "report_added": N_("Report received"),
    "report_merged": N_("Another report of the same problem joined this case"),
    "dispatched": N_("Sent to the responsible department"),
    "acknowledged": N_("The department took the case"),
    "returned": N_("Returned to the dispatch centre"),
    "started": N_("Work started"),
    "resolved": N_("Resolved by the department"),
    "verified": N_("Fix confirmed"),
    "verification_failed": N_("Fix not confirmed; back to the department"),
    "closed": N_("Case closed"),
    "reopened": N_("Case reopened"),
    "transferred": N_("Transferred to another department"),
    "merged": N_("Merged into another case"),
    "case_merged_in": N_("A duplicate case was merged into this one"),
    "note": N_("Note"),
    "rated": N_("Rated by the reporter"),
    "followup_opened": N_("Follow-up opened after a low rating"),
    "followup_closed": N_("Follow-up closed"),
    "low_rating": N_("Low rating"),
    "ack_warning": N_("Acknowledge deadline close"),
    "ack_escalated": N_("Escalated: not acknowledged in time"),
    "resolve_warning": N_("Resolve deadline close"),
    "resolve_escalated": N_("Escalated: not resolved in time"),
}

RETURN_REASONS = {
    "not_our_area": N_("Not our area"),
    "not_our_duty": N_("Not our duty"),
    "insufficient_info": N_("Not enough information"),
    "duplicate": N_("Duplicate"),
    "other": N_("Other"),
}

CHANNEL_LABELS = {
    "open311": N_("Open311"),
    "portal": N_("Portal"),
    "sensor": N_("Sensor"),
    "hotline": N_("12345 hotline"),
    "staff_api": N_("Staff API"),
    "system": N_("System"),
}

# Timeline actors that are not people with names.
ACTOR_LABELS = {"citizen": N_("Citizen"), "sensor": N_("Sensor"), "system": N_("System")}

# Sensor entity types of the demo city and the usual Smart Data Models (others show their own name).
SENSOR_TYPE_LABELS = {
    "Manhole": N_("Manhole covers"),
    "Streetlight": N_("Streetlights"),
    "WasteContainer": N_("Waste containers"),
    "AirQualityObserved": N_("Air-quality stations"),
}
