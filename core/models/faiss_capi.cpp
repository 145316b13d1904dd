/* faiss_capi.cpp - the few functions of FAISS's official C API that core/models/ann.c
 * calls, implemented over libfaiss's C++ API.
 *
 * Why this file exists: Debian 12's libfaiss-dev (FAISS 1.7.3) installs the C
 * API headers (faiss/c_api/...) but no compiled libfaiss_c, so a C program
 * including them would not link. Each function below keeps the signature and
 * contract declared in those headers: 0 on success, otherwise a negative
 * FaissErrorCode (-2 FAISS exception, -4 other std::exception, -1 anything
 * else), with the exception's message kept per thread for
 * faiss_get_last_error(). No exception ever crosses into C.
 *
 * Non-goals: the rest of the C API. Add a function here only when C code
 * needs it, and keep it faithful to its header.
 */
#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>

#include <exception>
#include <new>
#include <string>

extern "C" {
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <faiss/c_api/utils/distances_c.h>
}

namespace
{

/* Per-thread, as in the official library: concurrent readers of one index
 * must not see each other's messages. Set on failure only. */
thread_local std::string last_error;
thread_local bool have_error = false;

int remember(int code, const char *what)
{
    try {
        last_error = what ? what : "unknown error";
    } catch (...) {
        /* Out of memory while copying the message: keep a static text. */
        last_error.clear();
    }
    have_error = true;
    return code;
}

/* Run f, translating any exception into the C API's error code. */
template <class F> int guarded(F f)
{
    try {
        f();
        return 0;
    } catch (const faiss::FaissException &e) {
        return remember(-2, e.what());
    } catch (const std::exception &e) {
        return remember(-4, e.what());
    } catch (...) {
        return remember(-1, "unknown exception");
    }
}

faiss::Index *ix(FaissIndex *p) { return reinterpret_cast<faiss::Index *>(p); }
const faiss::Index *cix(const FaissIndex *p) { return reinterpret_cast<const faiss::Index *>(p); }

} // namespace

extern "C" {

const char *faiss_get_last_error()
{
    if (!have_error)
        return nullptr;
    return last_error.empty() ? "error message lost (out of memory)" : last_error.c_str();
}

void faiss_Index_free(FaissIndex *obj) { delete ix(obj); }

int faiss_Index_d(const FaissIndex *obj) { return cix(obj)->d; }

idx_t faiss_Index_ntotal(const FaissIndex *obj) { return cix(obj)->ntotal; }

int faiss_Index_is_trained(const FaissIndex *obj) { return cix(obj)->is_trained ? 1 : 0; }

FaissMetricType faiss_Index_metric_type(const FaissIndex *obj)
{
    return static_cast<FaissMetricType>(cix(obj)->metric_type);
}

int faiss_index_factory(FaissIndex **p_index, int d, const char *description,
                        FaissMetricType metric)
{
    return guarded([&] {
        faiss::Index *made =
            faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric));
        *p_index = reinterpret_cast<FaissIndex *>(made);
    });
}

int faiss_Index_add_with_ids(FaissIndex *index, idx_t n, const float *x, const idx_t *xids)
{
    return guarded([&] { ix(index)->add_with_ids(n, x, xids); });
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k, float *distances,
                       idx_t *labels)
{
    return guarded([&] { cix(index)->search(n, x, k, distances, labels); });
}

int faiss_Index_reconstruct(const FaissIndex *index, idx_t key, float *recons)
{
    return guarded([&] { cix(index)->reconstruct(key, recons); });
}

FaissIndexIDMap2 *faiss_IndexIDMap2_cast(FaissIndex *index)
{
    return reinterpret_cast<FaissIndexIDMap2 *>(dynamic_cast<faiss::IndexIDMap2 *>(ix(index)));
}

void faiss_IndexIDMap2_id_map(FaissIndexIDMap2 *index, idx_t **p_id_map, size_t *p_size)
{
    auto *m = reinterpret_cast<faiss::IndexIDMap2 *>(index);
    if (p_id_map)
        *p_id_map = m->id_map.data();
    if (p_size)
        *p_size = m->id_map.size();
}

FaissIndex *faiss_IndexIDMap2_sub_index(FaissIndexIDMap2 *index)
{
    return reinterpret_cast<FaissIndex *>(reinterpret_cast<faiss::IndexIDMap2 *>(index)->index);
}

FaissIndexFlat *faiss_IndexFlat_cast(FaissIndex *index)
{
    return reinterpret_cast<FaissIndexFlat *>(dynamic_cast<faiss::IndexFlat *>(ix(index)));
}

int faiss_write_index(const FaissIndex *idx, FILE *f)
{
    return guarded([&] { faiss::write_index(cix(idx), f); });
}

int faiss_read_index(FILE *f, int io_flags, FaissIndex **p_out)
{
    return guarded([&] {
        faiss::Index *got = faiss::read_index(f, io_flags);
        *p_out = reinterpret_cast<FaissIndex *>(got);
    });
}

int faiss_ParameterSpace_new(FaissParameterSpace **space)
{
    return guarded(
        [&] { *space = reinterpret_cast<FaissParameterSpace *>(new faiss::ParameterSpace()); });
}

void faiss_ParameterSpace_free(FaissParameterSpace *obj)
{
    delete reinterpret_cast<faiss::ParameterSpace *>(obj);
}

int faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace *space, FaissIndex *index,
                                             const char *name, double value)
{
    return guarded([&] {
        reinterpret_cast<const faiss::ParameterSpace *>(space)->set_index_parameter(ix(index), name,
                                                                                    value);
    });
}

} // extern "C"

/* Process-wide FAISS setting (a global in libfaiss itself): flat-index
 * searches of at least this many queries use BLAS. The server lowers it to
 * 1 at start-up, before any thread searches, so single queries go through
 * OpenBLAS's vectorised GEMV rather than FAISS's scalar loop. */
extern "C" void faiss_set_distance_compute_blas_threshold(int value)
{
    faiss::distance_compute_blas_threshold = value;
}

extern "C" int faiss_get_distance_compute_blas_threshold()
{
    return faiss::distance_compute_blas_threshold;
}
