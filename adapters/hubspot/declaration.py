"""What the HubSpot adapter serves and gates, without importing the HubSpot client."""

NAME = "hubspot"
PRODUCTS = ("hubspot",)

# HubSpot ships no managed package (that is Salesforce's packaging); everything else applies.
FEATURES: dict[str, tuple[str, ...]] = {
    "hubspot": (
        "cti",
        "activities_identification",
        "embedded_login",
        "automation_identification",
        "agent_sync",
    ),
}
