"""Names of timeline events and return reasons as the portal shows them (msgids, translated at render)."""

from wecity.web.i18n import N_

EVENT_LABELS = {
    "submitted": N_("Case opened"),
    "report_added": N_("Report received"),
    "report_merged": N_("Another report of the same problem joined this case"),
    "dispatched": N_("Sent to the responsible department"),
    "acknowledged": N_("The department took the case"),
    "assigned": N_("Assigned to a handler"),
    "returned": N_("Returned to the dispatch centre"),
    "started": N_("Work started"),
    "resolved": N_("Resolved by the department"),
    "verified": N_("Fix confirmed"),
    "verification_failed": N_("Fix not confirmed; back to the department"),
    "closed": N_("Case closed"),
    "reopened": N_("Case reopened"),
    "citizen_update": N_("The reporter added an update"),
    "citizen_urged": N_("A citizen asked for it to be hurried (催办)"),
    "transferred": N_("Transferred to another department"),
    "recategorised": N_("Filed under another category"),
    "merged": N_("Merged into another case"),
    "case_merged_in": N_("A duplicate case was merged into this one"),
    "unmerged": N_("Taken out of a merge: not the same problem"),
    "case_unmerged_out": N_("A case merged into this one was taken out again"),
    "duplicate_dismissed": N_("Not the same problem as a case the platform proposed"),
    "note": N_("Note"),
    "rated": N_("Rated by the reporter"),
    "followup_opened": N_("Follow-up opened after a low rating"),
    "followup_closed": N_("Follow-up closed"),
    "low_rating": N_("Low rating"),
    "ack_warning": N_("Acknowledge deadline close"),
    "ack_escalated": N_("Escalated: not acknowledged in time"),
    "resolve_warning": N_("Resolve deadline close"),
    "resolve_escalated": N_("Escalated: not resolved in time"),
    "priority_changed": N_("Priority changed"),
}

# Case priorities (cases.choices.Priority), highest last.
PRIORITY_LABELS = {"low": N_("Low priority"), "normal": N_("Normal priority"), "high": N_("High priority"),
                   "urgent": N_("Urgent")}

# What a standard reply is for (cases.choices.ReplyUse).
REPLY_USES = {"resolve": N_("Resolution note"), "note": N_("Note to the citizen")}

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

# What a sensor rule's anomaly condition watches for (wecity.cases.choices.AnomalyKind).
ANOMALY_KIND_LABELS = {"any": N_("any anomaly"), "spike": N_("a spike"), "stuck": N_("stuck readings"),
                       "drift": N_("drift")}

# The service loop (wecity.govservice): an application's timeline, review outcomes, uncounted procedures,
# and what a certificate check found.
APPLICATION_EVENTS = {
    "created": N_("Application started"),
    "material_added": N_("Material uploaded"),
    "submitted": N_("Application submitted"),
    "accepted": N_("Accepted by the department"),
    "not_accepted": N_("Not accepted"),
    "supplement_requested": N_("More materials asked for"),
    "supplied": N_("The applicant supplied what was asked"),
    "review_approved": N_("A reviewing department agreed"),
    "review_refused": N_("A reviewing department disagreed"),
    "approved": N_("Approved"),
    "refused": N_("Refused"),
    "delivered": N_("Result delivered"),
    "granted_without_application": N_("Granted without an application (the city's data meet every condition)"),
    "withdrawn": N_("Withdrawn by the applicant"),
    "special_started": N_("A procedure the time limit does not count started"),
    "special_ended": N_("The uncounted procedure ended"),
    "extended": N_("Time limit extended"),
    "warned": N_("80% of the time limit used"),
    "escalated": N_("Overdue: escalated"),
    "rated": N_("Rated by the applicant"),
    "rectification_opened": N_("Rectification opened after a bad rating"),
    "rectification_closed": N_("Rectification done"),
}
REVIEW_OUTCOMES = {"approve": N_("agreed"), "refuse": N_("disagreed"), "supplement": N_("asked for more materials")}
SPECIAL_PROCEDURES = {"hearing": N_("hearing"), "inspection": N_("inspection or testing"),
                      "expert_review": N_("expert review"), "public_notice": N_("public notice")}
VERDICTS = {"valid": N_("Genuine and valid"), "revoked": N_("Revoked"), "expired": N_("Expired"),
            "unknown": N_("Not issued by this city"), "forged": N_("Forged or altered")}

# The data catalogue (wecity.datashare): share classes, EU data themes and frequencies, field sensitivity.
SHARE_CLASSES = {"unconditional": N_("Shared unconditionally"), "conditional": N_("Shared on conditions"),
                 "not_shared": N_("Not shared")}
THEMES = {"AGRI": N_("Agriculture"), "ECON": N_("Economy and finance"), "EDUC": N_("Education and culture"),
          "ENER": N_("Energy"), "ENVI": N_("Environment"), "GOVE": N_("Government and public sector"),
          "HEAL": N_("Health"), "INTR": N_("International issues"), "JUST": N_("Justice and public safety"),
          "REGI": N_("Regions and cities"), "SOCI": N_("Population and society"), "TECH": N_("Science and technology"),
          "TRAN": N_("Transport")}
FREQUENCIES = {"CONT": N_("continuously"), "HOURLY": N_("hourly"), "DAILY": N_("daily"), "WEEKLY": N_("weekly"),
               "MONTHLY": N_("monthly"), "QUARTERLY": N_("quarterly"), "ANNUAL": N_("yearly"),
               "IRREG": N_("irregularly"), "NEVER": N_("never")}
SENSITIVITIES = {"public": N_("public"), "internal": N_("internal"), "personal": N_("personal"),
                 "sensitive": N_("sensitive personal")}

# Data sharing (wecity.datashare): request and grant states, and a request's timeline.
REQUEST_STATES = {"submitted": N_("Awaiting decision"), "granted": N_("Granted"), "refused": N_("Refused"),
                  "withdrawn": N_("Withdrawn")}
GRANT_STATES = {"active": N_("In force"), "expired": N_("Expired"), "revoked": N_("Revoked")}
REQUEST_EVENTS = {"submitted": N_("Requested"), "granted": N_("Granted"), "refused": N_("Refused"),
                  "withdrawn": N_("Withdrawn"), "escalated": N_("Overdue: escalated to the coordinating department"),
                  "revoked": N_("Grant revoked"), "disclosure_delayed": N_("Telling the people concerned delayed"),
                  "urged": N_("Urged by the coordinating department")}
ACCESS_OUTCOMES = {"ok": N_("read"), "no_grant": N_("refused: no grant"), "expired": N_("refused: grant expired"),
                   "revoked": N_("refused: grant revoked"), "anonymous": N_("refused: not signed in"),
                   "outside_grant": N_("refused: field outside the grant"),
                   "masked_filter": N_("refused: filter on a masked field")}
