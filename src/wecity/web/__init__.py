"""The one-entry portal: server-rendered pages for citizens, staff and operations, in 简体中文 and English."""
