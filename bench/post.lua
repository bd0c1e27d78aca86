-- A static script (no request()): urk builds its request once per thread,
-- so it must cost what the same request from flags costs.
wrk.method = "POST"
wrk.body   = "foo=bar&baz=quux"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
