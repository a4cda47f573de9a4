"""Where the package finds its settings: the environment variables and the default host.

A leaf module (no imports), so that the command line can name them before it imports anything
that does I/O. The variable names are the vendor's own: its MCP server and CLI read
``ACEDATACLOUD_API_TOKEN`` and ``ACEDATACLOUD_API_BASE_URL`` (packages ``mcp-nanobanana`` and
``acedatacloud``); the host is the one of the vendor's integration guide
("Nano Banana Images API", https://platform.acedata.cloud/documents/23985a11-d713-41d1-ad84-24b021805b3d).
"""

__all__ = ["DEFAULT_BASE_URL", "ENV_BASE_URL", "ENV_TOKEN"]

#: The API host when neither ``base_url`` nor ``$ACEDATACLOUD_API_BASE_URL`` is set.
DEFAULT_BASE_URL = "https://api.acedata.cloud"
#: Environment variable holding the API token.
ENV_TOKEN = "ACEDATACLOUD_API_TOKEN"  # noqa: S105 - a variable name, not a secret
#: Environment variable holding the base URL.
ENV_BASE_URL = "ACEDATACLOUD_API_BASE_URL"
