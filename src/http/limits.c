#include "http/limits.h"

void http_limits_default(struct http_limits *l)
{
    l->max_target = HTTP_DEFAULT_MAX_TARGET;
    l->max_head = HTTP_DEFAULT_MAX_HEAD;
    l->max_fields = HTTP_DEFAULT_MAX_FIELDS;
    l->max_body = HTTP_DEFAULT_MAX_BODY;
    l->header_timeout_ms = HTTP_DEFAULT_HEADER_TIMEOUT_MS;
    l->idle_timeout_ms = HTTP_DEFAULT_IDLE_TIMEOUT_MS;
    l->send_timeout_ms = HTTP_DEFAULT_SEND_TIMEOUT_MS;
    l->max_requests = HTTP_DEFAULT_MAX_REQUESTS;
    l->max_conns = HTTP_DEFAULT_MAX_CONNS;
    l->linger_ms = HTTP_DEFAULT_LINGER_MS;
    l->discard_body = HTTP_DEFAULT_DISCARD_BODY;
}
