"""Reject reason codes: stable strings that clients match on, each with a default message."""

from __future__ import annotations

import enum

__all__ = ["Reason"]


class Reason(enum.StrEnum):
    # validation in the matching core
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    INSTRUMENT_HALTED = "instrument_halted"
    INVALID_TICK = "invalid_tick"
    INVALID_LOT = "invalid_lot"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_PRICE = "invalid_price"
    OUTSIDE_PRICE_BAND = "outside_price_band"
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    # outcomes of time in force and self-trade prevention
    FOK_NOT_FILLABLE = "fok_not_fillable"
    IOC_REMAINDER = "ioc_remainder"
    MARKET_REMAINDER = "market_remainder"
    DAY_END = "day_end"
    SELF_TRADE = "self_trade_prevented"
    USER_CANCEL = "user_cancel"
    # intake and verification
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_PARTICIPANT = "unknown_participant"
    NOT_OWNER = "not_owner"
    NOT_PERMITTED = "not_permitted"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    PARTICIPANT_DISABLED = "participant_disabled"
    # the trust boundary: who sent it, for which venue, when, and how often
    SENDER_MISMATCH = "sender_mismatch"  # the command names another participant than its stream's owner
    WRONG_VENUE = "wrong_venue"
    OUTSIDE_WINDOW = "outside_window"  # sent_ms too far from the exchange's clock
    RATE_LIMITED = "rate_limited"
    TOO_MANY_OPEN_ORDERS = "too_many_open_orders"
    UNKNOWN_PARTITION = "unknown_partition"  # a transfer to a partition the exchange does not run
    # the registry: verified issuance, retirement, product labels and claims
    UNVERIFIED_ISSUANCE = "unverified_issuance"
    OVERLAPPING_PERIOD = "overlapping_period"
    OVER_ISSUANCE = "over_issuance"
    CONFLICT_OF_INTEREST = "conflict_of_interest"
    NOT_A_VERIFIER = "not_a_verifier"
    INELIGIBLE_CREDITS = "ineligible_credits"
    UNKNOWN_PROJECT = "unknown_project"
    DUPLICATE_PROJECT = "duplicate_project"
    UNKNOWN_PRODUCT = "unknown_product"
    DUPLICATE_PRODUCT = "duplicate_product"
    UNKNOWN_FACTOR = "unknown_factor"
    NO_ACTIVITY_DATA = "no_activity_data"
    UNLABELLED_PRODUCT = "unlabelled_product"
    INSUFFICIENT_RETIREMENTS = "insufficient_retirements"
    CERTIFICATE_UNUSABLE = "certificate_unusable"
    # the registry's integrity rules (docs/registry.md, "Only tonnes that deserve to exist")
    EX_ANTE_PERIOD = "ex_ante_period"
    INCOMPLETE_PROJECT = "incomplete_project"
    UNKNOWN_METHODOLOGY = "unknown_methodology"
    WITHDRAWN_METHODOLOGY = "withdrawn_methodology"
    OUTSIDE_CREDITING_PERIOD = "outside_crediting_period"
    BEFORE_CUTOFF = "before_cutoff"
    RESERVED_OWNER = "reserved_owner"
    PROJECT_UNDER_REVIEW = "project_under_review"
    PROJECT_REJECTED = "project_rejected"
    NOT_UNDER_REVIEW = "not_under_review"
    NOT_ACCREDITED = "not_accredited"
    ACCREDITATION_EXPIRED = "accreditation_expired"
    OUTSIDE_SCOPE = "outside_scope"
    BAD_REPORT_SIGNATURE = "bad_report_signature"
    # compliance surrender (shared/domain/compliance.py)
    UNKNOWN_SCHEME = "unknown_scheme"
    DUPLICATE_SCHEME = "duplicate_scheme"
    NO_OBLIGATION = "no_obligation"
    NOT_ELIGIBLE_FOR_SCHEME = "not_eligible_for_scheme"
    OFFSET_CAP_EXCEEDED = "offset_cap_exceeded"
    OVER_SURRENDER = "over_surrender"
    COMPLIANCE_YEAR_CLOSED = "compliance_year_closed"
    BEFORE_DEADLINE = "before_deadline"
    EMISSIONS_ALREADY_VERIFIED = "emissions_already_verified"
    # issue 15: retirement records and truthful claims (docs/registry.md)
    SERIALS_NOT_FREE = "serials_not_free"  # the blocks a retirement selected are not held free
    INCOMPLETE_BOUNDARY = "incomplete_boundary"  # a stage inside the boundary has no data and no cut-off
    MIXED_FACTOR_TABLES = "mixed_factor_tables"  # activities of more than one table, or edited factors
    UNPUBLISHED_FACTOR_TABLE = "unpublished_factor_table"
    FACTOR_TABLE_EXISTS = "factor_table_exists"  # a published version never changes
    STALE_LABEL = "stale_label"  # a claim about a label that is not the product's current, valid one
    NOT_OFFSET_CREDITS = "not_offset_credits"  # allowances, or serials issued without a verified report
    VINTAGE_OUTSIDE_CLAIM_WINDOW = "vintage_outside_claim_window"
    RETIREMENT_PURPOSE_MISMATCH = "retirement_purpose_mismatch"  # not retired for product_claim:<product>
