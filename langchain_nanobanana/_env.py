"""Where the package finds its settings: the environment variables and the default host.

A leaf module (no imports), so that the command line can name them before it imports anything
that does I/O. The variable names are the vendor's own: its MCP server and CLI (packages
``mcp-nanobanana-pro`` and ``nano-banana-pro-cli``) read ``ACEDATACLOUD_API_TOKEN`` and
``ACEDATACLOUD_API_BASE_URL``; its Python SDK (``acedatacloud``) reads the token's name only, and
its default host differs. The host is the one of the vendor's Nano Banana Images API Integration
Guide, https://platform.acedata.cloud/documents/2fb479f8-63ec-424c-a93e-b12cd4250f9e.
"""

__all__ = ["DEFAULT_BASE_URL", "ENV_BASE_URL", "ENV_TOKEN"]

#: The API host when neither ``base_url`` nor ``$ACEDATACLOUD_API_BASE_URL`` is set.
DEFAULT_BASE_URL = "https://api.acedata.cloud"
#: Environment variable holding the API token.
ENV_TOKEN = "ACEDATACLOUD_API_TOKEN"  # noqa: S105 - a variable name, not a secret
#: Environment variable holding the base URL.
ENV_BASE_URL = "ACEDATACLOUD_API_BASE_URL"
