"""What the Pega adapter serves and gates, without importing its HTTP client."""

NAME = "pega"
PRODUCT = "pega"
PRODUCTS = (PRODUCT,)

# Pega has no managed package to enter (that is Salesforce's packaging); everything else applies.
FEATURES: dict[str, tuple[str, ...]] = {
    PRODUCT: (
        "cti",
        "activities_identification",
        "embedded_login",
        "automation_identification",
        "agent_sync",
    ),
}
