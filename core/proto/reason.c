/* reason.c — spellings and sentences of the refusal reasons (see reason.h). */
#include "core/reason.h"

#include <string.h>

static const struct {
    const char *name;
    const char *text;
} reasons[RWKVD_REASON_COUNT] = {
    [RWKVD_OK] = {"ok", "no error"},
    [RWKVD_R_TOO_LARGE] = {"too_large", "the message is larger than max_message_size"},
    [RWKVD_R_MALFORMED] = {"malformed", "the message is not exactly one well-formed msgpack object"},
    [RWKVD_R_TOO_DEEP] = {"too_deep", "maps/arrays are nested deeper than the protocol allows"},
    [RWKVD_R_TOO_MANY] = {"too_many", "a map, array or token count is above its limit"},
    [RWKVD_R_UNSUPPORTED_TYPE] = {"unsupported_type", "msgpack ext types are not accepted"},
    [RWKVD_R_WRONG_TYPE] = {"wrong_type", "a value has the wrong msgpack type"},
    [RWKVD_R_BAD_KEY] = {"bad_key", "a map key is not a string of at most 32 bytes, or repeats"},
    [RWKVD_R_UNKNOWN_FIELD] = {"unknown_field", "a field this protocol version does not define"},
    [RWKVD_R_MISSING_FIELD] = {"missing_field", "a required field is absent"},
    [RWKVD_R_BAD_VERSION] = {"bad_version", "the protocol version v is not 1 or 2"},
    [RWKVD_R_BAD_DOC] = {"bad_doc", "the document id is empty or longer than 256 bytes"},
    [RWKVD_R_BAD_SEQ] = {"bad_seq", "seq is negative or above 2^53-1"},
    [RWKVD_R_PAYLOAD_CONFLICT] = {"payload_conflict", "more than one of text, bytes, tokens"},
    [RWKVD_R_NO_PAYLOAD] = {"no_payload", "none of text, bytes, tokens, and eof is not true"},
    [RWKVD_R_BAD_UTF8] = {"bad_utf8", "text is not valid UTF-8 (send bytes instead)"},
    [RWKVD_R_BAD_TOKEN] = {"bad_token", "a token id is not below the vocabulary size, or a token bin is not a multiple of 4 bytes"},
    [RWKVD_R_BAD_OPTS] = {"bad_opts", "an opts value is out of its range"},
    [RWKVD_R_OPTS_NOT_FIRST] = {"opts_not_first", "opts may only be sent with seq 0"},
    [RWKVD_R_SEQ_GAP] = {"seq_gap", "seq is beyond the next expected one and was not held"},
    [RWKVD_R_PAYLOAD_KIND] = {"payload_kind", "a document mixes tokens with text/bytes"},
    [RWKVD_R_DOC_FINISHED] = {"doc_finished", "the document already ended with eof"},
    [RWKVD_R_CHECKPOINT_BAD] = {"checkpoint_bad", "no generation of the document's checkpoint is readable"},
    [RWKVD_R_OTHER_MODEL] = {"other_model", "the document's checkpoint was made with another model, tokenizer or precision"},
    [RWKVD_R_IO_ERROR] = {"io_error", "a checkpoint could not be read or written"},
    [RWKVD_R_OVERLOADED] = {"overloaded", "out of memory or queues full"},
    [RWKVD_R_ENGINE] = {"engine", "the inference engine failed on this document"},
    [RWKVD_R_SHUTTING_DOWN] = {"shutting_down", "the daemon is stopping"},
    [RWKVD_R_UNKNOWN_CMD] = {"unknown_cmd", "cmd is not a defined control command"},
    [RWKVD_R_UNKNOWN_DOC] = {"unknown_doc", "no such document, in memory or on disk"},
};

const char *rwkvd_reason_name(rwkvd_reason r)
{
    if ((unsigned)r >= RWKVD_REASON_COUNT)
        return "unknown";
    return reasons[r].name;
}

const char *rwkvd_reason_text(rwkvd_reason r)
{
    if ((unsigned)r >= RWKVD_REASON_COUNT)
        return "unknown reason";
    return reasons[r].text;
}

rwkvd_reason rwkvd_reason_from_name(const char *name)
{
    for (int r = 0; r < RWKVD_REASON_COUNT; r++)
        if (strcmp(reasons[r].name, name) == 0)
            return (rwkvd_reason)r;
    return RWKVD_REASON_COUNT;
}
