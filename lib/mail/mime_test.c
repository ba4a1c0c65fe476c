/* SPDX-License-Identifier: MIT */
#include "mail/mime.h"
#include "unit.h"

static void
test_placeholder(void)
{
	CHECK(1);
}

UNIT_MAIN(UNIT_CASE(test_placeholder))
