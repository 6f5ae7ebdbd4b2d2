"""ORM classes by noun, on server.db.Base (the older ones still live in server.db)."""
