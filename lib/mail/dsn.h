/* TEMP stub */
#ifndef TERN_DSN_H
#define TERN_DSN_H
#include "mail/qfile.h"
#include "mail/status_log.h"
#define DSN_ATTR_NOTICE "notice"
#define DSN_NOTICE_2BOUNCE "2bounce"
enum dsn_kind { DSN_FAILED, DSN_DELAYED, DSN_SUCCESS };
int dsn_write(const struct qfile *q, enum dsn_kind kind, const int *rcpts, int n, const struct status_log *log, const char *notify_to, char id_r[QUEUE_ID_SIZE], const char **error_r);
#endif
