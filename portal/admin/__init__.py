"""Administration: organisations, municipalities, desks, routing, staff and retention; never tip content."""
