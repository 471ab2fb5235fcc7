"""What the ServiceNow adapter serves and gates, without importing pysnow."""

NAME = "servicenow"
PRODUCT = "servicenow"
PRODUCTS = (PRODUCT,)

# ServiceNow has no managed package to enter.
FEATURES: dict[str, tuple[str, ...]] = {
    PRODUCT: (
        "cti",
        "activities_identification",
        "embedded_login",
        "automation_identification",
        "agent_sync",
    ),
}
