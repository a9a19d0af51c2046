"""The pure core: config model, catalog, render plan, alerting model, readiness rules. No I/O beyond reading
templates; imports nothing from stackctl's other packages."""
