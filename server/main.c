/* rfm-serve - the scoring service: loads models/ once, serves JSON over
 * HTTP with token auth and validation against openapi.yaml.
 *
 * Exit status: 0 after a clean shutdown (SIGTERM or SIGINT: stop
 * accepting, finish requests in flight), 1 when models or the contract
 * cannot be loaded or the port cannot be bound, 2 on bad usage or config.
 */
#include <getopt.h>
#include <gsl/gsl_errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "oas.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rfm-serve [--config FILE] [--port N] [--models DIR]\n"
               "\n"
               "Serves the models in DIR (default from the config: models/) over HTTP.\n"
               "Tokens: RFM_API_TOKENS=tok1,tok2 in the environment and/or\n"
               "server.tokens_sha256 in the config. SIGTERM or SIGINT stops it cleanly.\n"
               "\n"
               "  --config FILE   configuration (default config/rfm.yaml)\n"
               "  --port N        override server.port (0 = any free port)\n"
               "  --models DIR    override models_dir\n"
               "  --help          this text\n");
}

int main(int argc, char **argv)
{
    const char *config_path = "config/rfm.yaml", *models_dir = NULL;
    long port = -1;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"port", required_argument, 0, 'p'},
                                         {"models", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:p:m:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config_path = optarg; break;
        case 'm': models_dir = optarg; break;
        case 'p': {
            char *end;
            port = strtol(optarg, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "rfm-serve: --port must be from 0 to 65535\n");
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    gsl_set_error_handler_off();
    char err[RFM_ERRLEN];
    rfm_config *cfg;
    if (config_load(config_path, &cfg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        return 2;
    }
    if (port >= 0)
        cfg->server.port = (int)port;
    if (!models_dir)
        models_dir = cfg->models_dir;

    int rc = 1;
    oas_spec *spec = NULL;
    api *a = NULL;
    http_tokens tokens = {0};
    http_server *srv = NULL;
    FILE *log = stderr;
    if (oas_load(cfg->server.openapi, &spec, err, sizeof err) != RFM_OK ||
        http_tokens_init(&tokens, cfg->server.tokens_sha256, cfg->server.ntokens,
                         getenv("RFM_API_TOKENS"), err, sizeof err) != RFM_OK ||
        api_load(models_dir, cfg->server.openapi, &a, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        goto out;
    }
    if (tokens.n == 0)
        fprintf(stderr, "rfm-serve: warning: no tokens (set RFM_API_TOKENS or "
                        "server.tokens_sha256): every scoring request will get 401\n");
    if (cfg->server.access_log && !(log = fopen(cfg->server.access_log, "a"))) {
        fprintf(stderr, "rfm-serve: cannot open access log %s\n", cfg->server.access_log);
        log = stderr;
        goto out;
    }
    /* Signals go to this thread only: block them before the pool starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    size_t nroutes;
    const http_route *routes = api_routes(a, &nroutes);
    int bound;
    if (http_start(&cfg->server, spec, &tokens, routes, nroutes, a, log, &srv, &bound, err,
                   sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        goto out;
    }
    char desc[256];
    api_describe(a, desc, sizeof desc);
    fprintf(stderr, "rfm-serve: listening on http://%s:%d (%s)\n", cfg->server.host, bound, desc);
    int sig;
    sigwait(&set, &sig);
    fprintf(stderr, "rfm-serve: %s: finishing requests in flight\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop(srv, 30);
    fprintf(stderr, "rfm-serve: stopped\n");
    rc = 0;
out:
    if (log && log != stderr)
        fclose(log);
    api_free(a);
    http_tokens_free(&tokens);
    oas_free(spec);
    config_free(cfg);
    return rc;
}
