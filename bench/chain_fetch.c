/* chain_fetch: the RPC ceiling of bench/chain_bench.sh.  A bare libcurl
 * client, one reused handle (keep-alive), fetching blocks FROM..TO the way
 * block_follower asks for them: JSON-RPC batches of PER blocks, each block
 * eth_getBlockByNumber(n, true) + eth_getBlockReceipts(n).  Bodies are
 * received and counted, not parsed.  Prints
 *   blocks=N seconds=S bytes=B requests=R
 *
 *   chain_fetch URL FROM TO [PER]
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t
sink(char *p, size_t sz, size_t n, void *ud)
{
    (void) p;
    *(size_t *) ud += sz * n;
    return sz * n;
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: chain_fetch URL FROM TO [PER]\n");
        return 2;
    }
    const char *url = argv[1];
    int64_t from = strtoll(argv[2], NULL, 10), to = strtoll(argv[3], NULL, 10);
    int per = argc > 4 ? atoi(argv[4]) : 10;
    size_t bytes = 0, got;
    long code = 0, requests = 0;
    char *body = malloc((size_t) per * 200 + 16);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *h;
    double t0;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    h = curl_easy_init();
    if (!h || !body)
        return 1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    t0 = now();
    for (int64_t a = from; a <= to; a += per) {
        int64_t b = a + per - 1 < to ? a + per - 1 : to;
        size_t off = 0;
        int id = 1;

        off += sprintf(body + off, "[");
        for (int64_t n = a; n <= b; n++) {
            off += sprintf(body + off,
                           "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"eth_getBlockByNumber\","
                           "\"params\":[\"0x%" PRIx64 "\",true]},"
                           "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"eth_getBlockReceipts\","
                           "\"params\":[\"0x%" PRIx64 "\"]}",
                           n == a ? "" : ",", id, (uint64_t) n, id + 1, (uint64_t) n);
            id += 2;
        }
        sprintf(body + off, "]");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        got = 0;
        CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 200 || got < 100) {
            fprintf(stderr, "chain_fetch: blocks %" PRId64 "..%" PRId64 ": %s, HTTP %ld, %zu bytes\n",
                    a, b, curl_easy_strerror(rc), code, got);
            return 1;
        }
        bytes += got;
        requests++;
    }
    printf("blocks=%" PRId64 " seconds=%.4f bytes=%zu requests=%ld\n", to - from + 1, now() - t0,
           bytes, requests);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    free(body);
    return 0;
}
