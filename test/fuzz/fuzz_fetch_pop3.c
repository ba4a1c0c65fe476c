/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the fetch daemon's POP3 client (fetch/fetch_pop3.c)
 * against a server that sends the input (fuzz_fetch.c says how, and
 * what is checked).
 */
#include "fuzz_fetch.h"
#include "fuzz_util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_fetch_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_fetch_run(data, size, FETCH_POP3, fetch_pop3);
	return 0;
}
