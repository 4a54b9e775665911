# The edge cache in front of the app (README, "Edge cache"; aios/edge.py is the app's side).
#
# It keeps only what the app marked for shared caches: anonymous GET answers carrying an
# `xkey` header (the cache namespaces the copy depends on) and `s-maxage` (how long it may be
# kept) with `stale-while-revalidate` (how long after that it may be served while refetched).
# Signed-in requests (a session cookie or an Authorization header) and anything but GET and
# HEAD go to the app untouched; answers that set a cookie are never kept. The app purges by
# key on every write that retires its own copies: `PURGE /` with an `xkey-purge` header, from
# the addresses in the `purgers` ACL only.
#
# backend.vcl (found on vcl_path: /etc/varnish in the image) names the backend and the purgers
# ACL; docker-compose.yml mounts this directory, tests and `make bench` write their own.
vcl 4.1;

import xkey;

include "backend.vcl";

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "An xkey-purge header names the keys to purge"));
        }
        # A hard purge: an old copy is never served again, not even as stale.
        set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.n-gone));
    }
    unset req.http.xkey-purge;
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Keep these cookie names in step with SESSION_COOKIE_NAME and django.contrib.messages: a
    # pending message is shown (and consumed) by the app on the next page.
    if (req.http.Authorization || req.http.Cookie ~ "(^|;\s*)(sessionid|messages)=") {
        return (pass);
    }
    # Anonymous: the app answers one copy for everyone, whatever other cookies (csrftoken)
    # come along; they still reach the app on a miss. The builtin would pass on any cookie.
    return (hash);
}

sub vcl_backend_response {
    if (bereq.uncacheable) {
        return (deliver);
    }
    if (beresp.http.Set-Cookie
        || !(beresp.http.xkey || beresp.http.Cache-Control ~ "immutable")
        || beresp.ttl <= 0s) {
        # Not marked for a shared cache. Hit-for-miss: the next requests for this URL go
        # straight to the app, side by side, and a copy marked later is kept.
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    if (beresp.http.Cache-Control !~ "stale-while-revalidate") {
        set beresp.grace = 0s;  # Varnish would otherwise serve it 10 s past its s-maxage
    }
    # The app's copy is the same for every anonymous request: the edge matches copies without
    # the Cookie header (signed-in requests never come here). Clients still get the app's Vary,
    # so a browser does not reuse an anonymous page once signed in.
    if (beresp.http.Vary) {
        set beresp.http.x-client-vary = beresp.http.Vary;
        set beresp.http.Vary = regsuball(beresp.http.Vary, "(?i)(^|,)\s*cookie\s*(?=,|$)", "\1");
        set beresp.http.Vary = regsuball(beresp.http.Vary, "^,\s*|,\s*(?=,)|,\s*$", "");
        if (beresp.http.Vary == "") {
            unset beresp.http.Vary;
        }
    }
    return (deliver);
}

sub vcl_deliver {
    unset resp.http.xkey;
    if (resp.http.x-client-vary) {
        set resp.http.Vary = resp.http.x-client-vary;
        unset resp.http.x-client-vary;
    }
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
