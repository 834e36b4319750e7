"""The demo city (Changsha): departments, categories, staff and, later, a lived-in history."""
