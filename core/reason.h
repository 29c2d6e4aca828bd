/* reason.h — the fixed list of machine-readable reasons a message, a request
 * or a document can be refused for.
 *
 * One enum shared by the message decoder, the session loop, the control
 * socket and the metrics (rwkvd_rejected_total{reason="..."}), so the code a
 * client sees in an error output, the label in Prometheus and the word in the
 * log line are always the same string.  daemon/PROTOCOL.md §7 lists them with
 * their meaning; this file is the source of truth for the spelling.  New
 * reasons are only ever appended (clients may switch on the strings).
 */
#ifndef RWKVD_REASON_H
#define RWKVD_REASON_H

typedef enum rwkvd_reason {
    RWKVD_OK = 0,
    /* one message, found by the decoder */
    RWKVD_R_TOO_LARGE,        /* message above max_message_size */
    RWKVD_R_MALFORMED,        /* not exactly one well-formed msgpack object */
    RWKVD_R_TOO_DEEP,         /* containers nested deeper than allowed */
    RWKVD_R_TOO_MANY,         /* a count above a limit (entries, ids, items) */
    RWKVD_R_UNSUPPORTED_TYPE, /* msgpack ext/timestamp */
    RWKVD_R_WRONG_TYPE,       /* a value (or the message itself) of the wrong type */
    RWKVD_R_BAD_KEY,          /* map key not a short str, or repeated */
    RWKVD_R_UNKNOWN_FIELD,    /* a key this protocol version does not define */
    RWKVD_R_MISSING_FIELD,    /* a required key is absent */
    RWKVD_R_BAD_VERSION,      /* v is not 1 or 2 */
    RWKVD_R_BAD_DOC,          /* doc id empty or longer than 256 bytes */
    RWKVD_R_BAD_SEQ,          /* seq negative or above 2^53-1 */
    RWKVD_R_PAYLOAD_CONFLICT, /* more than one of text/bytes/tokens */
    RWKVD_R_NO_PAYLOAD,       /* none of text/bytes/tokens and no eof */
    RWKVD_R_BAD_UTF8,         /* text is not valid UTF-8 */
    RWKVD_R_BAD_TOKEN,        /* id >= vocab, or token bin not a multiple of 4 */
    RWKVD_R_BAD_OPTS,         /* an opts value out of its range */
    RWKVD_R_OPTS_NOT_FIRST,   /* opts on a message with seq > 0 */
    /* one document, found by the session */
    RWKVD_R_SEQ_GAP,          /* seq beyond the next expected one, not held */
    RWKVD_R_PAYLOAD_KIND,     /* tokens mixed with text/bytes in one document */
    RWKVD_R_DOC_FINISHED,     /* data for a document that already had eof */
    RWKVD_R_CHECKPOINT_BAD,   /* no readable checkpoint generation for the doc */
    RWKVD_R_OTHER_MODEL,      /* the doc's checkpoint was made by another model */
    RWKVD_R_IO_ERROR,         /* a checkpoint could not be read or written */
    RWKVD_R_OVERLOADED,       /* out of memory / queues full */
    RWKVD_R_ENGINE,           /* the inference engine failed */
    RWKVD_R_SHUTTING_DOWN,    /* the daemon is stopping */
    /* control requests */
    RWKVD_R_UNKNOWN_CMD,      /* cmd is not one of the defined commands */
    RWKVD_R_UNKNOWN_DOC,      /* the request names a document that does not exist */
    RWKVD_REASON_COUNT
} rwkvd_reason;

/* The wire spelling ("too_large", ...); "ok" for RWKVD_OK and "unknown" for
 * a value outside the enum.  Never NULL; static storage.  Thread safe. */
const char *rwkvd_reason_name(rwkvd_reason r);

/* One short human sentence about the reason (for logs and docs). */
const char *rwkvd_reason_text(rwkvd_reason r);

/* Looks a wire spelling up; RWKVD_REASON_COUNT when it is not one. */
rwkvd_reason rwkvd_reason_from_name(const char *name);

#endif
