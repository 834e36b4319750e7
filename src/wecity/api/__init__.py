"""The HTTP app that mounts every domain's routers."""
