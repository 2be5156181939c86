/* dav_xml: WebDAV answers (multistatus, error bodies) parsed safely with
 * libxml2, request bodies built with escaping, and hrefs normalised so that
 * hrefs encoded differently by different servers compare equal.
 *
 * Pure functions: no network, no store. Strings returned as char * belong to
 * the caller (free()); pointers inside a struct dav_response belong to the
 * parser and live until the callback returns. */
#ifndef MAILFS_DAV_XML_H
#define MAILFS_DAV_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "sync/error.h"

/* Initialise libxml2 (xmlInitParser): once from main before other threads
 * start, since libxml2's first initialisation is not thread-safe. Calling it
 * again does nothing. */
void dav_xml_init(void);

/* Bodies above this are refused before libxml2 sees them. */
#define DAV_XML_MAX (64u << 20)

/* XML namespaces, matched by URI (never by prefix). */
#define DAV_NS_DAV "DAV:"
#define DAV_NS_CALDAV "urn:ietf:params:xml:ns:caldav"
#define DAV_NS_CARDDAV "urn:ietf:params:xml:ns:carddav"
#define DAV_NS_CS "http://calendarserver.org/ns/"

/* The properties the parser knows. Bits (1u << DAV_PROP_x) select them when
 * building a PROPFIND body. */
enum dav_prop {
    DAV_PROP_GETETAG,         /* DAV:getetag */
    DAV_PROP_CALENDAR_DATA,   /* CALDAV:calendar-data */
    DAV_PROP_ADDRESS_DATA,    /* CARDDAV:address-data */
    DAV_PROP_DISPLAYNAME,     /* DAV:displayname */
    DAV_PROP_RESOURCETYPE,    /* DAV:resourcetype -> resourcetype bits */
    DAV_PROP_SUPPORTED_COMPS, /* CALDAV:supported-calendar-component-set -> comps */
    DAV_PROP_GETCTAG,         /* CS:getctag */
    DAV_PROP_SYNC_TOKEN,      /* DAV:sync-token */
    DAV_PROP_CURRENT_USER_PRINCIPAL,    /* DAV:current-user-principal/href */
    DAV_PROP_CALENDAR_HOME_SET,         /* CALDAV:calendar-home-set/href */
    DAV_PROP_ADDRESSBOOK_HOME_SET,      /* CARDDAV:addressbook-home-set/href */
    DAV_PROP_SCHEDULE_DEFAULT_CALENDAR, /* CALDAV:schedule-default-calendar-URL/href */
    DAV_PROP_SCHEDULE_INBOX,            /* CALDAV:schedule-inbox-URL/href */
    DAV_PROP_GETCONTENTTYPE,            /* DAV:getcontenttype */
    DAV_PROP_COUNT
};

#define DAV_PROP_BIT(p) (1u << (p))

enum dav_resourcetype {
    DAV_RT_COLLECTION = 1 << 0,
    DAV_RT_CALENDAR = 1 << 1,
    DAV_RT_ADDRESSBOOK = 1 << 2,
    DAV_RT_PRINCIPAL = 1 << 3,
    DAV_RT_SCHEDULE_INBOX = 1 << 4,
    DAV_RT_SCHEDULE_OUTBOX = 1 << 5,
};

enum dav_comp {
    DAV_COMP_VEVENT = 1 << 0,
    DAV_COMP_VTODO = 1 << 1,
    DAV_COMP_VJOURNAL = 1 << 2,
    DAV_COMP_OTHER = 1 << 3, /* VFREEBUSY, VAVAILABILITY...: not shown */
};

/* One property of a response. */
struct dav_propval {
    int status;       /* its propstat's status (200, 404...); 0: not in the answer */
    const char *text; /* NULL when empty or absent; see below */
    size_t len;
};

/* One <response>. Property texts: the value with surrounding blanks trimmed
 * (getetag, displayname, getctag, sync-token, getcontenttype); calendar-data
 * and address-data untrimmed and with CRLF line ends (an XML parser turns
 * the server's CRLF into LF; iCalendar and vCard want CRLF); for the
 * href-valued properties the normalised href (several, for a home set,
 * separated by '\n', which a normalised href never holds). */
struct dav_response {
    const char *href;      /* normalised (dav_href_normalize) */
    int status;            /* the response's own <status>; 0 when it has none */
    unsigned resourcetype; /* DAV_RT_* bits (when prop[RESOURCETYPE].status is 200) */
    unsigned comps; /* DAV_COMP_* bits (when prop[SUPPORTED_COMPS].status is 200) */
    struct dav_propval prop[DAV_PROP_COUNT];
    const char *error;       /* local name of the first element in <error>
                                (e.g. "no-uid-conflict"), or NULL */
    const char *description; /* <responsedescription>, or NULL */
};

/* Called once per response, in document order (a status-only response with
 * several hrefs: once per href). Return 0 to go on, -1 to stop (fill err). */
typedef int (*dav_response_fn)(void *ctx, const struct dav_response *r,
                               struct sync_error *err);

/* Parse a DAV:multistatus. base_path is the path the request went to (for
 * relative hrefs). *sync_token, when not NULL, gets the top-level sync-token
 * (RFC 6578) or NULL; the caller frees it, also on failure. Returns 0, or -1
 * with *err filled: SYNC_ERR_PROTOCOL (scope FOLDER) for a body that is too
 * big, not well-formed, holds a DTD, or is not a multistatus; or what fn set.
 * libxml2 runs with XML_PARSE_NONET and its safe defaults only: no entity
 * substitution, no DTD loading, its depth and text-size limits; a DOCTYPE is
 * refused outright (DAV never needs one). */
int dav_multistatus_parse(const char *body, size_t len, const char *base_path,
                          dav_response_fn fn, void *ctx, char **sync_token,
                          struct sync_error *err);

/* A DAV:error body (RFC 4918 section 16, e.g. Radicale's answer to a stale
 * sync token): copies the local name of its first child element (such as
 * "valid-sync-token") into name and its namespace URI into ns (either may be
 * NULL). Returns 1 when the body is such an error, else 0. */
int dav_error_parse(const char *body, size_t len, char *name, size_t name_size, char *ns,
                    size_t ns_size);

/* --- request bodies (NULL when a text cannot be put in XML: control
 *     characters or invalid UTF-8) ---------------------------------------- */

/* PROPFIND asking for the props in `mask` (DAV_PROP_BIT). */
char *dav_xml_propfind(unsigned mask);
/* REPORT sync-collection (RFC 6578), sync-level 1, asking for getetag.
 * token: NULL or "" for the initial sync. */
char *dav_xml_sync_collection(const char *token);
/* REPORT calendar-multiget (addressbook false) or addressbook-multiget with
 * getetag and the data, for n normalised hrefs. */
char *dav_xml_multiget(bool addressbook, const char *const *hrefs, size_t n);
/* REPORT calendar-query (addressbook false) or addressbook-query matching
 * every item, asking for getetag and the data. */
char *dav_xml_query_all(bool addressbook);
/* MKCALENDAR body: displayname (may be NULL) and the component set (comps
 * DAV_COMP_* bits; 0 leaves it to the server). */
char *dav_xml_mkcalendar(const char *displayname, unsigned comps);
/* Extended MKCOL (RFC 5689) of an address book with a displayname. */
char *dav_xml_mkaddressbook(const char *displayname);
/* PROPPATCH setting a collection's DAV:displayname. */
char *dav_xml_set_displayname(const char *displayname);

/* --- hrefs ----------------------------------------------------------------
 * The normalised form of an href is an absolute path, percent-decoded and
 * readable ("/alice/cal/Team meeting é.ics"), with dot segments removed,
 * without scheme, host, query or fragment. Bytes that a decoded path cannot
 * show unambiguously stay escaped with upper-case hex: "%2F" (a slash inside
 * a name), "%25" (a percent sign), "%3F" and "%23" ('?' and '#'), control
 * characters, bytes that are not valid UTF-8, and a blank that ends the
 * href ("%20"). So a '%' in a normalised href always
 * starts such an escape, and two hrefs name the same resource exactly when their
 * normalised forms are equal (strcmp). */

/* Normalise `href` as found in an answer (an absolute URL, an absolute path,
 * or a path relative to base_path; encoded however the server likes). A new
 * string; NULL for an empty href. */
char *dav_href_normalize(const char *href, const char *base_path);
/* Percent-encode a normalised href for a request URL or an XML body: every
 * byte but A-Z a-z 0-9 - . _ ~ / is encoded (kept escapes pass through). */
char *dav_href_encode(const char *href);
/* true when a and b (in any encoding) name the same resource; one trailing
 * slash does not count, since servers differ on it for collections. */
bool dav_href_equal(const char *a, const char *b);
/* The href of a member called `name` in `collection` (normalised, with or
 * without its trailing slash). The name is a file name, not a path: empty,
 * ".", "..", a '/', control characters or invalid UTF-8 are refused (NULL
 * with *err filled, scope ITEM, retry NEVER), so a member never lands outside
 * its collection. A '%', '?' or '#' in the name is kept as a character ("%25",
 * "%3F", "%23"). */
char *dav_href_join(const char *collection, const char *name, struct sync_error *err);
/* true when href (normalised) is directly inside collection (normalised). */
bool dav_href_is_member(const char *collection, const char *href);

#endif
