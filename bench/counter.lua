-- wrk's side of the targets-seq scenario: a new path per request, built by
-- request() (wrk's dynamic-script path), as urk's {{seq}} does without one.
local counter = 0

request = function()
   local path = "/?id=" .. counter
   counter = counter + 1
   return wrk.format(nil, path)
end
