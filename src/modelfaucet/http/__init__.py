"""HTTP edge: app factory, dependencies, schemas, one router per resource."""
