/*
 * libFuzzer target for hsmc's CBOR decoder and encoder. Not part of the
 * default test run. Build and run (clang with libFuzzer):
 *
 *   clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Iinclude -Iconfig -I/usr/include/p11-kit-1 \
 *     test/fuzz/fuzz_cbor.c core/hsmc_cbor.c -o fuzz_cbor
 *   ./fuzz_cbor -max_total_time=60 [corpus_dir]
 *
 * Each input goes through the same three paths as the cross-check driver
 * (test/tools/cbor_cross_driver.c, included below): the get_* walk with a
 * size-only encoder, the walk into an exactly sized buffer, and
 * skip()/get_raw(). The target aborts when the paths disagree or when an
 * accepted input does not re-encode to itself (strict decoding means
 * accepted input is deterministic). The sanitizers catch any read outside
 * the input.
 */
#include <stdlib.h>
#include <string.h>

#define HSMC_CBOR_CROSS_NO_MAIN
#include "../tools/cbor_cross_driver.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cross_result_t r; /* big (map verdicts); keep it off the stack */

    cross_check(size > 0 ? data : NULL, size, &r);
    if (r.bug != NULL)
        abort();
    if (r.accepted && (r.out_len != size || (size > 0 && memcmp(r.out, data, size) != 0)))
        abort();
    free(r.out);
    return 0;
}
