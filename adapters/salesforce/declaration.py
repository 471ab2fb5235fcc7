"""What the Salesforce adapter serves and gates, without importing simple-salesforce (the CLI reads
this on every command; the adapter itself loads only when a connector is used)."""

NAME = "salesforce"
PRODUCTS = ("salesforce", "salesforce_voice")

# The managed package (the CTI's Lightning components, its objects) exists for the salesforce
# product only; Salesforce Voice runs on the org's native call centers, with no package to enter.
FEATURES: dict[str, tuple[str, ...]] = {
    "salesforce": (
        "cti",
        "managed_package",
        "activities_identification",
        "embedded_login",
        "automation_identification",
        "agent_sync",
    ),
    "salesforce_voice": (
        "cti",
        "activities_identification",
        "embedded_login",
        "automation_identification",
        "agent_sync",
    ),
}
