"""Tables of enterprise services: the enterprise register, the policies as code, and what each policy
says of each enterprise."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "enterprise"}

# The enterprise register: one row per enterprise, beside its identity as an applicant (`applicants`,
# kind "enterprise", whose legal representative and agents are in `applicant_agents`). The typed columns
# are what every city holds; `facts` holds the further variables policies read (wecity.enterprise.variables),
# each {name: value}. A column left NULL is not known, which a policy treats as unknown, never as zero.
enterprises = sa.Table(
    "enterprises", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("applicant_id", sa.Integer, sa.ForeignKey("applicants.id"), nullable=False, unique=True),
    sa.Column("credit_code", sa.String(18), nullable=False, unique=True),  # 统一社会信用代码, GB 32100
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("legal_form", sa.String(40)),          # 有限责任公司, 股份有限公司, 个人独资企业 ...
    sa.Column("industry_code", sa.String(6)),        # GB/T 4754-2017: section letter + 2-4 digits
    sa.Column("district", sa.String(20), index=True),  # area code of the district (areas.code)
    sa.Column("registered_on", sa.Date),
    sa.Column("registered_capital", sa.Float),       # 万元
    sa.Column("employees", sa.Integer),
    sa.Column("revenue", sa.Float),                  # 万元, last year
    sa.Column("total_assets", sa.Float),             # 万元
    sa.Column("tax_credit_grade", sa.String(1)),     # A B M C D
    sa.Column("size_class", sa.String(10)),          # stated by the register; else derived (codes.size_class)
    sa.Column("certificates", sa.JSON, nullable=False),  # ["high_tech", "specialised_sme", ...]
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Incremental matching: every change raises data_version; the matcher brings matched_version up to it.
    sa.Column("data_version", sa.Integer, nullable=False, default=1),
    sa.Column("matched_version", sa.Integer, nullable=False, default=0),
    info=INFO,
)
sa.Index("ix_enterprises_unmatched", enterprises.c.data_version, enterprises.c.matched_version)

# Variables a policy document declared beyond the packaged ones (wecity.enterprise.variables).
policy_variables = sa.Table(
    "policy_variables", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(10), nullable=False),
    sa.Column("label_zh", sa.String(100), nullable=False),
    sa.Column("label_en", sa.String(100), nullable=False),
    sa.Column("unit", sa.String(20), nullable=False),
    info=INFO,
)

# The policies in force or once in force: the current version's document, and every version kept.
policies = sa.Table(
    "policies", metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False, index=True),
    sa.Column("matter_code", sa.String(64), nullable=False),  # the matter its applications are made under
    sa.Column("automatic", sa.Boolean, nullable=False),       # 免申即享
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("valid_until", sa.Date),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The version the register was last matched against (below `version`: a match over the whole register
    # is due).
    sa.Column("matched_version", sa.Integer, nullable=False, default=0),
    # While the register is matched against a new version chunk by chunk (one transaction each, so that a
    # city's writers are not held up): the last enterprise id done.
    sa.Column("match_cursor", sa.Integer),
    # The city's day of the last whole-register match. Outcomes move with the day alone (a policy coming
    # into force or ending, a dated parameter such as the LPR, an enterprise's age): a policy last matched
    # on an earlier day is matched again.
    sa.Column("matched_on", sa.Date),
    info=INFO,
)

policy_versions = sa.Table(
    "policy_versions", metadata,
    sa.Column("code", sa.String(64), sa.ForeignKey("policies.code"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.Column("imported_by", sa.String(200), nullable=False),
    info=INFO,
)

# What each policy says of each enterprise, where it is not a plain "no": eligible and unknown outcomes are
# kept (with the amount, or what is missing); an ineligible enterprise has no row, and its page works the
# reason out again when asked. `application_id` is the application that followed: the decided one of a
# 免申即享 grant, or the 快申快享 draft the enterprise opened.
policy_matches = sa.Table(
    "policy_matches", metadata,
    sa.Column("enterprise_id", sa.Integer, sa.ForeignKey("enterprises.id"), primary_key=True),
    sa.Column("policy_code", sa.String(64), sa.ForeignKey("policies.code"), primary_key=True),
    sa.Column("policy_version", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(12), nullable=False),   # eligible | unknown
    # Money to the fen, exact in the database; read as a float (amounts are worked out half up to the fen).
    sa.Column("amount", sa.Numeric(14, 2, asdecimal=False)),
    sa.Column("missing", sa.JSON, nullable=False),         # variable names
    sa.Column("matched_at", UTCDateTime, nullable=False),
    sa.Column("notified_at", UTCDateTime),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id")),
    sa.Column("granted_at", UTCDateTime),                  # 免申即享: granted without an application
    info=INFO,
)
sa.Index("ix_policy_matches_policy_outcome", policy_matches.c.policy_code, policy_matches.c.outcome)
