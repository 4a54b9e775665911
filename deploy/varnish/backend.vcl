# docker-compose.yml's `scale` profile: the edge talks to HAProxy, which spreads requests over
# the web instances; the web instances purge from the compose network.
backend haproxy {
    .host = "haproxy";
    .port = "8080";
    .connect_timeout = 1s;
    .first_byte_timeout = 40s;  # REQUEST_TIMEOUT (30 s) plus a margin
}

acl purgers {
    "localhost";
    "10.0.0.0"/8;
    "172.16.0.0"/12;
    "192.168.0.0"/16;
}
