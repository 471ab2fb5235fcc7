"""What the Oracle B2C Service adapter serves and gates, without importing its client."""

NAME = "oracle"
PRODUCT = "oracle_sc"
PRODUCTS = (PRODUCT,)

# The connector runs in Oracle's agent desktop as an add-in: there is no managed package to enter
# (that is Salesforce's packaging); every other gated feature of seed 000 applies.
FEATURES: dict[str, tuple[str, ...]] = {
    PRODUCT: (
        "cti",
        "activities_identification",
        "embedded_login",
        "automation_identification",
        "agent_sync",
    ),
}
