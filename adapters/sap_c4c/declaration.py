"""What the SAP Cloud for Customer adapter serves and gates, without importing its client."""

NAME = "sap_c4c"
PRODUCT = "sap_c4c"
PRODUCTS = (PRODUCT,)

# C4C extensions ship as SDK solutions or key-user changes, not as a managed package one enters
# (that is Salesforce's packaging); every other gated feature applies.
FEATURES: dict[str, tuple[str, ...]] = {
    PRODUCT: (
        "cti",
        "activities_identification",
        "embedded_login",
        "automation_identification",
        "agent_sync",
    ),
}
