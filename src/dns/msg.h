/* msg.h - DNS messages (RFC 1035, 3596, 2782, 8659, 6891), sans-I/O.
 *
 * dns_msg_decode() reads one whole message from (buf, len) into a
 * structure whose record arrays the caller provides. It never allocates
 * and never copies bytes it does not have to: names are copied (they may
 * be spread over the message by compression), everything else that is
 * variable-sized (TXT strings, CAA tag and value, opaque RDATA, EDNS
 * options) is a slice of buf, which must stay unchanged while they are
 * used.
 *
 * Names are kept in wire form, uncompressed, as received (case kept), in a
 * fixed 256-byte dns_name_t: a length byte and up to 255 bytes, which is
 * exactly the largest legal name. Wire form is unambiguous (a label may
 * hold dots or any byte), compares with memcmp, and is what the builder
 * writes; dns_name_format() gives the presentation form for people.
 *
 * Strictness, each a distinct negative DNS_E_* code (dns_strerror gives
 * its reason): a compression pointer must point strictly before the start
 * of the run of labels it ends (so a loop cannot be built) and past the
 * header; at most DNS_PTR_HOPS_MAX pointers per name; labels of 64 bytes
 * or more (length bytes 0x40-0x7f, which is also the obsolete 0x40 label
 * type) and the reserved type 0x80 are errors; names over 255 bytes; counts
 * larger than the records present; any truncation; RDATA that its type's
 * fields do not fill exactly; an OPT record that is not in the additional
 * section, not owned by the root, or not the only one; bytes after the last
 * record.
 *
 * dns_builder_*() write a message into a caller buffer with a cap,
 * compressing names. A record that does not fit is refused with
 * DNS_E_NOSPACE and leaves the message as it was before the call, still
 * complete and well-formed: setting TC and sending it, or giving up, is the
 * caller's choice. */
#ifndef PORTICO_DNS_MSG_H
#define PORTICO_DNS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "dns/limits.h"

/* ------------------------------------------------------------ errors */

enum dns_err {
    DNS_E_HEADER = -1,      /* shorter than the 12-byte header */
    DNS_E_MSG_LONG = -2,    /* longer than 65535 bytes */
    DNS_E_COUNTS = -3,      /* counts promise more records than are present */
    DNS_E_TRUNC_NAME = -4,  /* a name runs past the end of the message */
    DNS_E_LABEL_LONG = -5,  /* label over 63 bytes (length byte 0x40-0x7f) */
    DNS_E_LABEL_TYPE = -6,  /* reserved label type 0x80 (length byte 0x80-0xbf) */
    DNS_E_NAME_LONG = -7,   /* name over 255 bytes */
    DNS_E_PTR_OUTSIDE = -8, /* compression pointer past the end of the message */
    DNS_E_PTR_HEADER = -9,  /* compression pointer into the header */
    DNS_E_PTR_FORWARD = -10,/* compression pointer forward */
    DNS_E_PTR_LOOP = -11,   /* compression pointer back into the name being read */
    DNS_E_PTR_HOPS = -12,   /* more than DNS_PTR_HOPS_MAX pointers in one name */
    DNS_E_TRUNC_Q = -13,    /* question cut after its name */
    DNS_E_TRUNC_RR = -14,   /* record cut in its fixed fields */
    DNS_E_RDLEN = -15,      /* RDLENGTH runs past the end of the message */
    DNS_E_RDATA_SHORT = -16,/* RDATA ends before its type's fields do */
    DNS_E_RDATA_EXTRA = -17,/* RDATA goes on after its type's fields */
    DNS_E_CAA_TAG = -18,    /* CAA tag empty or not alphanumeric */
    DNS_E_OPT_SECTION = -19,/* OPT record outside the additional section */
    DNS_E_OPT_NAME = -20,   /* OPT record not owned by the root */
    DNS_E_OPT_DUP = -21,    /* second OPT record */
    DNS_E_OPT_OPTIONS = -22,/* EDNS option overruns the OPT RDATA */
    DNS_E_TRAILING = -23,   /* bytes after the last record */
    DNS_E_NOSPACE = -24,    /* does not fit in the caller's buffer */
    DNS_E_ORDER = -25,      /* builder: section added after a later one */
    DNS_E_ARG = -26,        /* builder: invalid name or record given */
    DNS_E_EMPTY_LABEL = -27,/* presentation name with an empty label */
    DNS_E_ESCAPE = -28,     /* presentation name with a bad \ escape */
    DNS_E_UNKNOWN = -29,    /* type or class name not known */
};

/* The static reason for a DNS_E_* code ("unknown error" for others). */
const char *dns_strerror(int err);

/* ------------------------------------------------------------- names */

typedef struct dns_name {
    uint8_t len;                  /* wire bytes used, root byte included: 1..255 */
    uint8_t wire[DNS_NAME_MAX];   /* labels as on the wire, ending in 0 */
} dns_name_t;

extern const dns_name_t dns_name_root;

/* Reads a name in presentation form ("www.example.com", trailing dot
 * optional, "." is the root) into wire form. Escapes as in RFC 1035 §5.1:
 * \DDD (decimal, at most 255) for any byte, \X for the character X (so \.
 * is a dot inside a label). Returns 0, or DNS_E_EMPTY_LABEL (also for ""),
 * DNS_E_ESCAPE, DNS_E_LABEL_LONG, DNS_E_NAME_LONG; *n is undefined then. */
int dns_name_parse(dns_name_t *n, slice_t text);

/* Writes the presentation form of n with its trailing dot ("." for the
 * root) and a NUL into out[0, cap). Dots and backslashes inside labels and
 * the zone-file specials " ( ) ; @ $ are written \X, bytes outside 0x21-0x7e
 * \DDD, so dns_name_parse() gives n back exactly. DNS_NAME_STR_MAX is
 * always enough. Returns the length without the NUL, DNS_E_NOSPACE, or
 * DNS_E_ARG if n is not well-formed wire form. */
int dns_name_format(const dns_name_t *n, char *out, size_t cap);

/* 1 if a and b are the same name, ASCII letters compared without case
 * (RFC 4343); 0 otherwise. */
int dns_name_eq(const dns_name_t *a, const dns_name_t *b);

/* The offset just past the wire name at off in m[0, len) (a compression
 * pointer ends it), or len when it runs past the end. Nothing else is
 * checked: for walking messages dns_msg_decode accepted. */
size_t dns_name_skip(const uint8_t *m, size_t len, size_t off);

/* 1 if n is zone or a name below it (a subdomain at a label boundary),
 * letters compared without case; 0 otherwise. */
int dns_name_under(const dns_name_t *n, const dns_name_t *zone);

/* -------------------------------------------------- types, classes, codes */

enum {
    DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12,
    DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33, DNS_T_OPT = 41,
    DNS_T_ANY = 255, DNS_T_CAA = 257,
};

enum { DNS_C_IN = 1, DNS_C_CH = 3, DNS_C_HS = 4, DNS_C_NONE = 254, DNS_C_ANY = 255 };

enum {
    DNS_R_NOERROR = 0, DNS_R_FORMERR = 1, DNS_R_SERVFAIL = 2, DNS_R_NXDOMAIN = 3,
    DNS_R_NOTIMP = 4, DNS_R_REFUSED = 5, DNS_R_BADVERS = 16,
};

/* Mnemonic of a type ("A", "AAAA", "HTTPS", ...), class ("IN") or RCODE
 * ("NXDOMAIN", extended ones included); NULL when it has none (print it as
 * TYPE123 / CLASS123, RFC 3597 §5). */
const char *dns_type_name(uint16_t type);
const char *dns_class_name(uint16_t rclass);
const char *dns_rcode_name(unsigned rcode);

/* The number of a type or class mnemonic, without case, or of its generic
 * form "TYPE123" / "CLASS123". Returns 0..65535 or DNS_E_UNKNOWN. */
int dns_type_lookup(slice_t s);
int dns_class_lookup(slice_t s);

/* ------------------------------------------------------------ header */

/* Flag bits of dns_header_t.flags (RFC 1035 §4.1.1, RFC 4035 §3.2). */
#define DNS_F_QR        0x8000u
#define DNS_F_AA        0x0400u
#define DNS_F_TC        0x0200u
#define DNS_F_RD        0x0100u
#define DNS_F_RA        0x0080u
#define DNS_F_AD        0x0020u
#define DNS_F_CD        0x0010u
#define DNS_F_OPCODE(f) (((unsigned)(f) >> 11) & 0xfu)
#define DNS_F_RCODE(f)  ((unsigned)(f) & 0xfu)

typedef struct dns_header {
    uint16_t id;
    uint16_t flags;    /* QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE as sent */
    uint16_t qdcount, ancount, nscount, arcount;
} dns_header_t;

/* Reads the 12-byte header alone (to answer FORMERR or see TC even when
 * the rest is bad). Returns 0 or DNS_E_HEADER. */
int dns_header_decode(const uint8_t *buf, size_t len, dns_header_t *h);

/* ----------------------------------------------------------- records */

typedef struct dns_question {
    dns_name_t name;
    uint16_t qtype;
    uint16_t qclass;
} dns_question_t;

/* A resource record. The typed fields of the union are the ones of `type`
 * when dns_rr_is_typed(type, rclass); otherwise only `rdata` counts. */
typedef struct dns_rr {
    dns_name_t name;
    uint16_t type;
    uint16_t rclass;
    uint32_t ttl;        /* as sent; RFC 2181 §8 says read > 2^31-1 as 0 */
    slice_t rdata;       /* decode: the RDATA bytes in the message, which for
                            typed records may hold compression pointers;
                            builder: written as is for untyped records */
    union {
        uint8_t a[4];                   /* A (class IN) */
        uint8_t aaaa[16];               /* AAAA (class IN) */
        dns_name_t target;              /* CNAME, NS, PTR */
        struct dns_soa {
            dns_name_t mname, rname;
            uint32_t serial, refresh, retry, expire, minimum;
        } soa;
        struct dns_mx {
            uint16_t preference;
            dns_name_t exchange;
        } mx;
        struct dns_txt {
            slice_t data;    /* the <character-string>s, each with its length
                                byte; walk with dns_txt_next, build with
                                dns_txt_pack */
            size_t count;    /* decode: how many strings */
        } txt;
        struct dns_srv {
            uint16_t priority, weight, port;
            dns_name_t target;
        } srv;
        struct dns_caa {
            uint8_t flags;   /* bit 0x80: issuer critical */
            slice_t tag;     /* 1-255 ASCII letters and digits */
            slice_t value;
        } caa;
    };
} dns_rr_t;

/* 1 if records of this type and class are read into, and written from, the
 * typed fields: CNAME, NS, SOA, MX, TXT, PTR, SRV and CAA in any class, A
 * and AAAA in class IN only (their layout is Internet-specific, RFC 1035
 * §3.4). 0 for every other pair, and for OPT. */
int dns_rr_is_typed(uint16_t type, uint16_t rclass);

/* Walks TXT data: sets *s to the string at *off and moves *off past it.
 * Returns 1, 0 at the end, or DNS_E_RDATA_SHORT if a length overruns. */
int dns_txt_next(slice_t data, size_t *off, slice_t *s);

/* Writes n strings as TXT data into out[0, cap). Returns the length, or
 * DNS_E_ARG (a string over 255 bytes, or n == 0), or DNS_E_NOSPACE. */
int dns_txt_pack(uint8_t *out, size_t cap, const slice_t *strs, size_t n);

/* EDNS0, from the OPT pseudo-record (RFC 6891 §6.1). */
#define DNS_EDNS_DO     0x8000u   /* DNSSEC OK, in dns_edns_t.flags */

typedef struct dns_edns {
    int present;
    uint16_t udp_size;     /* requestor's payload size (the OPT CLASS) */
    uint8_t ext_rcode;     /* upper 8 bits of the 12-bit RCODE */
    uint8_t version;
    uint16_t flags;        /* DO and the Z bits */
    slice_t options;       /* option code, length, data, ...: checked to fit */
} dns_edns_t;

/* present, DNS_EDNS_PAYLOAD, version 0, no flags, no options. */
void dns_edns_default(dns_edns_t *e);

/* ----------------------------------------------------------- message */

enum dns_section { DNS_SEC_AN = 0, DNS_SEC_NS = 1, DNS_SEC_AR = 2 };

typedef struct dns_rrs {
    dns_rr_t *rr;      /* caller's array of `cap` records */
    size_t cap;
    size_t n;          /* records stored */
    size_t skipped;    /* records checked but not stored: beyond cap */
} dns_rrs_t;

typedef struct dns_msg {
    /* Set by the caller before decoding (NULL with cap 0 is fine). */
    dns_question_t *qd;
    size_t qd_cap;
    dns_rrs_t sec[3];    /* indexed by enum dns_section */

    /* Filled by dns_msg_decode. */
    dns_header_t h;      /* counts as sent, OPT included in arcount */
    size_t nqd;
    size_t qd_skipped;
    dns_edns_t edns;     /* the OPT record, which is not stored in sec[AR] */
    unsigned rcode;      /* 12 bits: header RCODE and EDNS extended RCODE */
    size_t err_off;      /* on error: offset where the fault was found */
} dns_msg_t;

/* Decodes the message in buf[0, len), which must be the whole message (a
 * UDP payload, or a TCP message without its length prefix). Every record
 * is checked; the first cap of each section are stored in order, the rest
 * counted in `skipped`. Returns 0, or a DNS_E_* code with m->err_off set;
 * m->h is valid whenever len >= 12, whatever the result. */
int dns_msg_decode(const uint8_t *buf, size_t len, dns_msg_t *m);

/* ----------------------------------------------------------- builder */

struct dns_comp {
    uint16_t off;      /* where the suffix starts in the message */
    uint8_t len;       /* its wire length */
    uint32_t hash;
};

typedef struct dns_builder {
    uint8_t *buf;
    size_t cap;        /* at most DNS_MSG_MAX */
    size_t len;        /* message bytes written, always a complete message */
    int stage;         /* 0 questions, 1 + enum dns_section after that */
    int has_opt;
    uint16_t count[4];
    size_t ncomp;
    struct dns_comp comp[DNS_COMP_MAX];
} dns_builder_t;

/* Starts a message with this ID and header flags (RCODE in its low 4 bits)
 * in buf[0, cap). Returns 0 or DNS_E_NOSPACE (cap < 12). */
int dns_builder_init(dns_builder_t *b, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags);

/* Rewrites the header flags, e.g. to set TC after a DNS_E_NOSPACE. */
void dns_builder_set_flags(dns_builder_t *b, uint16_t flags);

/* Appends a question. Questions come before any record. The name is
 * compressed against earlier names, byte-exact (so case, which a resolver
 * may use as 0x20 entropy, is kept). Returns 0, DNS_E_ORDER, DNS_E_ARG (a
 * malformed name), or DNS_E_NOSPACE. On any error nothing is written. */
int dns_builder_question(dns_builder_t *b, const dns_name_t *name, uint16_t qtype,
                         uint16_t qclass);

/* Appends a record to a section; sections go in order AN, NS, AR, each
 * any number of times in a row. Typed records (dns_rr_is_typed) are
 * written from their fields, the names in NS, CNAME, PTR, SOA and MX
 * compressed, the SRV target not (RFC 2782); others from rr->rdata as is.
 * The builder refuses what dns_msg_decode would refuse: OPT (use
 * dns_builder_edns), malformed names or TXT data, a bad CAA tag. Returns 0,
 * DNS_E_ORDER, DNS_E_ARG, DNS_E_RDATA_SHORT (TXT data), DNS_E_CAA_TAG or
 * DNS_E_NOSPACE. On any error nothing is written. */
int dns_builder_rr(dns_builder_t *b, enum dns_section sec, const dns_rr_t *rr);

/* Appends the OPT record to the additional section (e from
 * dns_edns_default, say). The extended RCODE goes in e->ext_rcode, its low
 * 4 bits in the header; e->present is not looked at. Returns 0,
 * DNS_E_OPT_DUP (one already), DNS_E_OPT_OPTIONS (malformed e->options) or
 * DNS_E_NOSPACE. On any error nothing is written. */
int dns_builder_edns(dns_builder_t *b, const dns_edns_t *e);

#endif
