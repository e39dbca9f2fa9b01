/* zcheck: zlib, OpenSSL and a dbm library from a 32-bit build root, each used for real. */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <zlib.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#ifdef USE_GDBM
#include <gdbm.h>
#define DBNAME "gdbm"
#else
#include <db.h>
#define DBNAME "db"
#endif

static int dbm_roundtrip(const char *path) {
#ifdef USE_GDBM
    datum key = {"errata", 6}, value = {"ok", 2}, got;
    GDBM_FILE db = gdbm_open(path, 0, GDBM_NEWDB, 0600, NULL);
    if (!db || gdbm_store(db, key, value, GDBM_REPLACE) != 0) return 0;
    got = gdbm_fetch(db, key);
    gdbm_close(db);
    return got.dptr && got.dsize == 2 && memcmp(got.dptr, "ok", 2) == 0;
#else
    DB *db;
    DBT key, value;
    int ok;
    if (db_create(&db, NULL, 0) != 0 || db->open(db, NULL, path, NULL, DB_HASH, DB_CREATE, 0600) != 0) return 0;
    memset(&key, 0, sizeof key); memset(&value, 0, sizeof value);
    key.data = "errata"; key.size = 6; value.data = "ok"; value.size = 2;
    ok = db->put(db, NULL, &key, &value, 0) == 0;
    memset(&value, 0, sizeof value);
    ok = ok && db->get(db, NULL, &key, &value, 0) == 0 && value.size == 2;
    db->close(db, 0);
    return ok;
#endif
}

int main(void) {
    const char *text = "STARTTLS for Red Hat Linux 7.3";
    unsigned char packed[128], unpacked[128], digest[EVP_MAX_MD_SIZE];
    uLongf packed_len = sizeof packed, unpacked_len = sizeof unpacked;
    unsigned int digest_len = 0, i;
    char hex[2 * EVP_MAX_MD_SIZE + 1];

    if (compress(packed, &packed_len, (const Bytef *)text, strlen(text)) != Z_OK ||
        uncompress(unpacked, &unpacked_len, packed, packed_len) != Z_OK ||
        unpacked_len != strlen(text) || memcmp(unpacked, text, unpacked_len) != 0) {
        puts("zlib roundtrip failed");
        return 1;
    }
    if (!EVP_Digest(text, strlen(text), digest, &digest_len, EVP_sha1(), NULL)) {
        puts("sha1 failed");
        return 1;
    }
    for (i = 0; i < digest_len; i++) sprintf(hex + 2 * i, "%02x", digest[i]);
    printf("zcheck errata=%d bits=%d zlib=%s %s sha1=%s %s=%s\n", ERRATA, (int)(8 * sizeof(void *)), zlibVersion(),
           OpenSSL_version(OPENSSL_VERSION), hex, DBNAME, dbm_roundtrip("/tmp/zcheck.db") ? "ok" : "failed");
    return 0;
}
