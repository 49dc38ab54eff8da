#include "transport.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "config.h"   /* build configuration: WSTRUST_VERSION */
#include "ipc.h"

int transport_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

struct sink {
	struct secbuf *buf;
	size_t max;
	bool too_large;
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	if (s->buf->len + n > s->max) {
		s->too_large = true;
		return 0;   /* makes curl abort with CURLE_WRITE_ERROR */
	}
	secbuf_append(s->buf, ptr, n);
	return s->buf->failed ? 0 : n;
}

/* Refuse early on an announced Content-Length over the quota. */
static size_t header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nitems;
	static const char cl[] = "content-length:";
	if (n > sizeof cl - 1 && strncasecmp(ptr, cl, sizeof cl - 1) == 0) {
		unsigned long long v = 0;
		const char *p = ptr + sizeof cl - 1;
		while (p < ptr + n && (*p == ' ' || *p == '\t'))
			p++;
		bool digits = false;
		while (p < ptr + n && *p >= '0' && *p <= '9') {
			digits = true;
			if (v > (1ull << 50))
				break;
			v = v * 10 + (unsigned)(*p++ - '0');
		}
		if (digits && v > s->max) {
			s->too_large = true;
			return 0;
		}
	}
	return n;
}

static bool host_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool loop = false;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		loop = !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "[::1]");
	curl_free(host);
	curl_url_cleanup(u);
	return loop;
}

enum transport_status transport_post(const struct http_request *rq, struct http_reply *rp, char *err,
                                     size_t errlen)
{
	memset(rp, 0, sizeof *rp);
	bool is_http = strncasecmp(rq->url, "http://", 7) == 0;
	if (is_http && !(rq->allow_insecure_http && host_is_loopback(rq->url))) {
		snprintf(err, errlen, "refusing plain http to %s (https only; allow_insecure_http permits loopback only)",
		         rq->url);
		return TRANSPORT_BAD_URL;
	}
	int64_t left = rq->deadline_ms - ipc_now_ms();
	if (left <= 0) {
		snprintf(err, errlen, "request deadline passed before contacting the STS");
		return TRANSPORT_TIMEOUT;
	}

	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(err, errlen, "out of memory (curl)");
		return TRANSPORT_FAILED;
	}
	secbuf_init(&rp->body, 0, 0);
	struct sink sink = { .buf = &rp->body, .max = rq->max_reply };
	char curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	char line[512];
	if (rq->soap_version == 12) {
		snprintf(line, sizeof line, "Content-Type: application/soap+xml; charset=utf-8; action=\"%s\"", rq->action);
		hdrs = curl_slist_append(hdrs, line);
	} else {
		hdrs = curl_slist_append(hdrs, "Content-Type: text/xml; charset=utf-8");
		snprintf(line, sizeof line, "SOAPAction: \"%s\"", rq->action);
		hdrs = curl_slist_append(hdrs, line);
	}
	/* No "Expect: 100-continue" round trip. */
	hdrs = curl_slist_append(hdrs, "Expect:");

	CURLcode setrc = CURLE_OK;
#define SET(opt, val) do { if (setrc == CURLE_OK) setrc = curl_easy_setopt(h, opt, val); } while (0)
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, is_http ? "http" : "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, rq->proxy ? rq->proxy : "");
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, (const char *)rq->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (rq->ca_file) {
		SET(CURLOPT_CAINFO, rq->ca_file);
		SET(CURLOPT_CAPATH, NULL);
	}
	SET(CURLOPT_TIMEOUT_MS, (long)left);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)left);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, &sink);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, &sink);
	SET(CURLOPT_ERRORBUFFER, curl_err);
	SET(CURLOPT_USERAGENT, "wstrustd/" WSTRUST_VERSION);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_reply);
	SET(CURLOPT_ACCEPT_ENCODING, NULL);   /* no decompression bombs */
#undef SET

	enum transport_status st = TRANSPORT_OK;
	CURLcode rc = setrc != CURLE_OK ? setrc : curl_easy_perform(h);
	const char *detail = curl_err[0] ? curl_err : curl_easy_strerror(rc);
	if (setrc != CURLE_OK) {
		snprintf(err, errlen, "could not set up the HTTP request: %s", curl_easy_strerror(setrc));
		st = TRANSPORT_FAILED;
	} else if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "reply from STS exceeds %zu bytes", rq->max_reply);
		st = TRANSPORT_TOO_LARGE;
	} else if (rp->body.failed) {
		snprintf(err, errlen, "out of secure memory for the STS reply");
		st = TRANSPORT_FAILED;
	} else {
		switch (rc) {
		case CURLE_OK:
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rp->status);
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
			/* curl says which: "SSL: no alternative certificate subject name
			 * matches target host name ..." or a chain problem. */
			snprintf(err, errlen, "TLS: %s: %s",
			         strstr(detail, "name") ? "host name mismatch" : "server certificate not trusted", detail);
			st = TRANSPORT_TLS;
			break;
#if LIBCURL_VERSION_NUM < 0x073e00
		case CURLE_SSL_CACERT:
#endif
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
			snprintf(err, errlen, "TLS: %s: %s",
			         rc == CURLE_SSL_CACERT_BADFILE ? "cannot use ca_file" :
			         strstr(detail, "certificate") ? "server certificate not trusted" : "handshake failed",
			         detail);
			st = TRANSPORT_TLS;
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
			snprintf(err, errlen, "STS unreachable: %s", detail);
			st = TRANSPORT_UNREACHABLE;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			snprintf(err, errlen, "STS did not answer in time: %s", detail);
			st = TRANSPORT_TIMEOUT;
			break;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			snprintf(err, errlen, "cannot use endpoint URL: %s", detail);
			st = TRANSPORT_BAD_URL;
			break;
		default:
			snprintf(err, errlen, "HTTP exchange with the STS failed: %s", detail);
			st = TRANSPORT_FAILED;
		}
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (st != TRANSPORT_OK)
		http_reply_free(rp);
	return st;
}

void http_reply_free(struct http_reply *rp)
{
	secbuf_free(&rp->body);
	rp->status = 0;
}
