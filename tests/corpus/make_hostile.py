#!/usr/bin/env python3
"""Writes the hostile corpus (tests/corpus/hostile/), which tests/fuzz/corpus.rs replays.

Run from anywhere: python3 tests/corpus/make_hostile.py. The output is checked in; the
script is kept so that a case can be added, or one re-made, the same way. Every file is
small: the largest is a line just past import.max_record_bytes (64 KiB).
"""
import io
import json
import os
import shutil
import struct
import zipfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile")
BOUNDARY = "XtestBoundary7MA4YWxkTrZu0gW"

V21_USERS = (b"sourcedId,username,givenName,familyName,email,phone,sms\n"
             b"stu-1,ava@school.example,Ava,Ng,,,\n"
             b"par-1,linda,Linda,Ng,linda.ng@example.com,(202) 555-0143,\n")
V1_USERS = (b"Email,First Name,Last Name,Phone,SIS ID\n"
            b"Linda.Ng@example.com,Linda,Ng,202-555-0143,\n"
            b"tom.ng@example.com,Tom,Ng,,G2\n")


def hostile_csv(good: bytes) -> dict:
    """Hostile versions of one CSV file (its header and first rows in `good`)."""
    header, *rows = good.rstrip(b"\n").split(b"\n")
    width = header.count(b",")
    row = rows[0]
    return {
        "unbalanced_quote": header + b"\n" + row + b"\n\"" + row + b"\n" + row + b"\n",
        "quote_mid_field": header + b"\n" + row.replace(b",", b",ab\"c", 1) + b"\n",
        "text_after_closing_quote": header + b"\n\"a\"b" + row[row.index(b","):] + b"\n",
        "nul_bytes": header + b"\n" + row.replace(b",", b",\x00", 1) + b"\n",
        "nul_in_header": header.replace(b",", b"\x00,", 1) + b"\n" + row + b"\n",
        "bom_in_the_middle": header + b"\n\xef\xbb\xbf" + row + b"\n" + row.replace(b",", b",\xef\xbb\xbf", 1) + b"\n",
        "two_boms": b"\xef\xbb\xbf\xef\xbb\xbf" + good,
        "cr_only_line_ends": good.replace(b"\n", b"\r"),
        "mixed_line_ends": header + b"\r\n" + row + b"\r" + rows[-1] + b"\n\n\r\n",
        "line_separator_u2028": good.replace(b"\n", b"\xe2\x80\xa8"),
        "ten_thousand_columns": header + b"," + b",".join(b"c%d" % i for i in range(10_000)) + b"\n" + row + b"\n",
        "ten_thousand_fields_in_a_row": header + b"\n" + row + b"," * 10_000 + b"\n",
        "field_over_max_field_bytes": header + b"\n" + row.replace(b",", b"," + b"x" * 3000, 1) + b"\n",
        "line_over_max_record_bytes": header + b"\n" + row.replace(b",", b"," + b"y" * 66_000, 1) + b"\n",
        "huge_quoted_field_with_line_breaks": header + b"\n" + row.replace(b",", b",\"" + b"z\n" * 3000 + b"\"", 1) + b"\n",
        "invalid_utf8": header + b"\n" + row.replace(b",", b",\xff\xfe\xc3(", 1) + b"\n",
        "overlong_utf8": header + b"\n" + row.replace(b",", b",\xc0\xaf\xe0\x80\xaf", 1) + b"\n",
        "utf8_surrogate": header + b"\n" + row.replace(b",", b",\xed\xa0\x80", 1) + b"\n",
        "invalid_utf8_in_header": header.replace(b",", b"\xff,", 1) + b"\n" + row + b"\n",
        "utf16le_with_bom": b"\xff\xfe" + good.decode().encode("utf-16-le"),
        "utf16be_with_bom": b"\xfe\xff" + good.decode().encode("utf-16-be"),
        "utf16le_without_bom": good.decode().encode("utf-16-le"),
        "empty": b"",
        "only_a_bom": b"\xef\xbb\xbf",
        "only_line_breaks": b"\n\n\r\n\n",
        "header_only_without_newline": header,
        "duplicate_headers": header + b"," + header.split(b",")[0] + b"\n" + row + b",x\n",
        "headers_in_another_case": header.upper() + b"\n" + row + b"\n",
        "headers_with_spaces_and_quotes": b",".join(b"\" " + h + b" \"" for h in header.split(b",")) + b"\n" + row + b"\n",
        "fewer_fields": header + b"\n" + b"a\n" + b"," * (width - 1) + b"\n",
        "more_fields": header + b"\n" + row + b",extra,extra\n",
        "tab_separated": good.replace(b",", b"\t"),
        "semicolon_separated": good.replace(b",", b";"),
        "blank_lines_between_rows": header + b"\n\n\n" + row + b"\n\n",
        "formula_injection": header + b"\n" + row.replace(b",", b",=HYPERLINK(\"http://x\"),", 1)[: len(row) + 30] + b"\n",
        "control_characters": header + b"\n" + row.replace(b",", b",\x01\x02\x1b[31m\x7f", 1) + b"\n",
        "right_to_left_override": header + b"\n" + row.replace(b",", b",\xe2\x80\xaemoc.elpmaxe", 1) + b"\n",
        "backslash_escaped_quotes": header + b"\n" + row.replace(b",", b",\"a\\\"b\"", 1) + b"\n",
        "random_bytes": bytes((i * 7919 + 13) % 256 for i in range(2000)),
    }


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def sds_sets() -> None:
    for fmt, name, good in [("sds-v1", "User.csv", V1_USERS), ("sds-v21", "users.csv", V21_USERS)]:
        for case, data in hostile_csv(good).items():
            write(os.path.join(ROOT, fmt, case, name), data)
    # Whole-set problems: a required file missing (an empty folder of the case), and the
    # names in another case (exact in v2.1).
    write(os.path.join(ROOT, "sds-v21", "wrong_case_file_name", "Users.csv"), V21_USERS)
    write(os.path.join(ROOT, "sds-v1", "stray_files", "notes.txt"), b"not a roster file\n")
    write(os.path.join(ROOT, "sds-v21", "stray_files", "users.csv.bak"), V21_USERS)


def zip_of(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        for name, data in entries:
            if isinstance(name, str):
                # A fixed time, so that the files come out the same on every run.
                name = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            name.compress_type = method
            z.writestr(name, data)
    return buffer.getvalue()


def overlapping_zip() -> bytes:
    """Two central-directory entries naming the same local file (an overlapping-entry
    bomb: each entry unpacks the same compressed bytes)."""
    data = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = b"0" * (4 << 20)
    compressed = data.compress(payload) + data.flush()
    crc = zlib.crc32(payload)
    name = b"users.csv"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(compressed), len(payload), len(name), 0) + name + compressed
    central = b""
    for i, entry in enumerate([b"users.csv", b"orgs.csv", b"roles.csv"]):
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(compressed), len(payload), len(entry), 0, 0, 0, 0, 0, 0) + entry
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 3, 3, len(central), len(local), 0)
    return local + central + end


def size_lie_zip() -> bytes:
    """A stored entry whose headers declare 10 bytes but which holds 200 KiB."""
    good = zip_of([("users.csv", b"a" * (20 << 10))], zipfile.ZIP_STORED)
    return good.replace(struct.pack("<I", 20 << 10), struct.pack("<I", 10))


def zips() -> None:
    fixture = os.path.join(os.path.dirname(ROOT), "..", "fixtures", "sds-v21", "basic")
    files = [(n, open(os.path.join(fixture, n), "rb").read()) for n in sorted(os.listdir(fixture))]
    symlink = zipfile.ZipInfo("users.csv", date_time=(2026, 1, 1, 0, 0, 0))
    symlink.external_attr = (0o120777 << 16)
    cases = {
        "bomb_ratio": zip_of(files + [("bomb.csv", b"0" * (16 << 20))]),
        "overlapping_entries": overlapping_zip(),
        "declared_size_lies": size_lie_zip(),
        "path_traversal": zip_of([("../../" + n, d) for n, d in files]),
        "absolute_paths": zip_of([("/tmp/" + n, d) for n, d in files]),
        "windows_traversal": zip_of([("..\\..\\" + n, d) for n, d in files]),
        "nested_zip": zip_of([("inner.zip", zip_of(files))]),
        "duplicate_names": zip_of(files + [("dir/users.csv", files[-1][1])]),
        "names_differing_in_case": zip_of(files + [("USERS.CSV", b"x\n")]),
        "thousand_empty_entries": zip_of([("e%d.csv" % i, b"") for i in range(1000)]),
        "folders_only": zip_of([("a/", b""), ("a/b/", b"")]),
        "macos_junk": zip_of(files + [("__MACOSX/._users.csv", b"\x00\x05"), (".DS_Store", b"\x00")]),
        "symlink_entry": zip_of([(n, d) for n, d in files if n != "users.csv"] + [(symlink, b"/etc/passwd")]),
        "nul_in_name": zip_of(files + [("a\x00b.csv", b"x")]),
        "control_characters_in_name": zip_of(files + [("a\nb\x1b.csv", b"x")]),
        "very_long_name": zip_of(files + [("n" * 300 + ".csv", b"x")]),
        "truncated": zip_of(files)[:-40],
        "central_directory_missing": zip_of(files)[:200],
        "header_then_garbage": b"PK\x03\x04" + bytes((i * 31) % 256 for i in range(600)),
        "empty_archive": zip_of([]),
        "empty_file": b"",
        "zip_of_hostile_csv": zip_of([(n, d) for n, d in files if n != "users.csv"] + [("users.csv", hostile_csv(V21_USERS)["unbalanced_quote"])]),
    }
    for case, data in cases.items():
        write(os.path.join(ROOT, "zip", case + ".zip"), data)


def part(name, data, filename=None, content_type=None):
    head = 'Content-Disposition: form-data; name="%s"' % name
    if filename is not None:
        head += '; filename="%s"' % filename
    head += "\r\n"
    if content_type:
        head += "Content-Type: %s\r\n" % content_type
    return ("--%s\r\n%s\r\n" % (BOUNDARY, head)).encode() + data + b"\r\n"


def multiparts() -> None:
    end = ("--%s--\r\n" % BOUNDARY).encode()
    users = part("file", V21_USERS, "users.csv")
    fmt = part("format", b"sds-v2.1")
    cases = {
        "no_closing_boundary": fmt + users,
        "only_the_closing_boundary": end,
        "empty": b"",
        "preamble_garbage": b"garbage before\r\n" + fmt + users + end,
        "missing_blank_line_after_headers": ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"users.csv\"\r\n" % BOUNDARY).encode() + V21_USERS + end,
        "lf_only_line_ends": (fmt + users + end).replace(b"\r\n", b"\n"),
        "boundary_inside_the_file": fmt + part("file", V21_USERS + b"\r\n--" + BOUNDARY.encode() + b"\r\n", "users.csv") + end,
        "path_traversal_file_name": fmt + part("file", V21_USERS, "../../etc/users.csv") + end,
        "windows_path_file_name": fmt + part("file", V21_USERS, "C:\\\\x\\\\users.csv") + end,
        "empty_file_name": fmt + part("file", V21_USERS, "") + end,
        "dot_dot_file_name": fmt + part("file", V21_USERS, "..") + end,
        "hidden_file_name": fmt + part("file", V21_USERS, ".users.csv") + end,
        "same_file_twice": fmt + users + part("file", V21_USERS, "USERS.csv") + end,
        "forty_files": fmt + b"".join(part("file", b"a\n", "f%d.csv" % i) for i in range(40)) + end,
        "unknown_field": fmt + part("evil", b"1") + users + end,
        "long_text_field": part("format", b"sds-v2.1" * 40) + users + end,
        "text_field_not_utf8": part("format", b"\xff\xfe") + users + end,
        "no_name_in_disposition": fmt + ("--%s\r\nContent-Disposition: form-data\r\n\r\n" % BOUNDARY).encode() + V21_USERS + b"\r\n" + end,
        "no_disposition": fmt + ("--%s\r\nContent-Type: text/csv\r\n\r\n" % BOUNDARY).encode() + V21_USERS + b"\r\n" + end,
        "huge_part_header": fmt + ("--%s\r\nX-Pad: %s\r\n" % (BOUNDARY, "p" * 20000)).encode() + b'Content-Disposition: form-data; name="file"; filename="users.csv"\r\n\r\n' + V21_USERS + b"\r\n" + end,
        "zip_and_csv_together": fmt + users + part("file", zip_of([("orgs.csv", b"sourcedId,name,type\n")]), "set.zip", "application/zip") + end,
        "zip_content_type_on_csv": fmt + part("file", V21_USERS, "users.csv", "application/zip") + end,
        "nested_multipart_mixed": fmt + ("--%s\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Disposition: file; filename=\"users.csv\"\r\n\r\n" % BOUNDARY).encode() + V21_USERS + b"\r\n--inner--\r\n\r\n" + end,
        "nul_in_file_name": fmt + part("file", V21_USERS, "users\x00.csv") + end,
        "quote_in_file_name": fmt + ('--%s\r\nContent-Disposition: form-data; name="file"; filename="us"ers.csv"\r\n\r\n' % BOUNDARY).encode() + V21_USERS + b"\r\n" + end,
        "random_bytes": bytes((i * 7919 + 13) % 256 for i in range(2000)),
    }
    for case, data in cases.items():
        write(os.path.join(ROOT, "multipart", case + ".txt"), data)


def json_bodies() -> None:
    cases = {
        "deep_arrays": b"[" * 20_000 + b"]" * 20_000,
        "deep_objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "unclosed_deep": b"[" * 20_000,
        "huge_integer": b'{"digestHour": ' + b"9" * 5000 + b', "points": ' + b"9" * 5000 + b"}",
        "huge_exponent": b'{"digestHour": 1e999999, "points": -1e999999}',
        "tiny_exponent": b'{"digestHour": 1e-999999}',
        "float_that_is_whole": b'{"digestHour": 7.0, "inviteWindowDays": 1e1}',
        "negative_zero": b'{"digestHour": -0, "deletionGuardPercent": -0.0}',
        "duplicate_keys": b'{"contactId": "1", "contactId": "2", "studentId": "stu-1", "studentId": 5}',
        "lone_surrogate": b'{"contactId": "\\ud800", "studentId": "\\udfff"}',
        "nul_escape": b'{"contactId": "a\\u0000b", "reason": "\\u0000"}',
        "nul_in_key": b'{"contact\\u0000Id": "1"}',
        "raw_nul_byte": b'{"contactId": "a\x00b"}',
        "byte_order_mark": b'\xef\xbb\xbf{"contactId": "1"}',
        "utf16": '{"contactId": "1"}'.encode("utf-16"),
        "invalid_utf8_in_string": b'{"contactId": "\xff\xfe"}',
        "trailing_garbage": b'{"contactId": "1"} {"x": 2}',
        "trailing_comma": b'{"contactId": "1",}',
        "single_quotes": b"{'contactId': '1'}",
        "comments": b'{"contactId": "1" /* c */}',
        "nan_and_infinity": b'{"digestHour": NaN, "points": Infinity}',
        "top_level_string": b'"contactId"',
        "top_level_number": b"12345678901234567890",
        "top_level_null": b"null",
        "empty_object": b"{}",
        "empty_body": b"",
        "whitespace_only": b" \n\t ",
        "truncated": b'{"studentId": "stu-1", "contactIds": ["1", ',
        "wrong_types_everywhere": json.dumps({"studentId": [], "contactIds": "1", "teacherIds": {}, "contactId": 1, "action": 7, "contact": [], "digestHour": "7", "title": {"a": 1}, "dueAt": 1, "notifyGuardians": "yes", "reason": [], "confirmStale": "true", "removeFromChat": 1, "chatId": []}).encode(),
        "long_string": json.dumps({"contactId": "x" * 20_000, "reason": "r" * 20_000}).encode(),
        "many_keys": json.dumps({"k%d" % i: i for i in range(3_000)}).encode(),
        "big_array": json.dumps({"contactIds": [str(i) for i in range(3_000)], "studentId": "stu-1"}).encode(),
    }
    for case, data in cases.items():
        write(os.path.join(ROOT, "json", case + ".json"), data)


def oneroster_pages() -> None:
    """Pages served as the first page of every collection of a sync."""
    cases = {
        "not_json": b"<html><body>502 Bad Gateway</body></html>",
        "truncated": b'{"users": [{"sourcedId": "u1", "role": "student"}, {"sourcedId": ',
        "empty_body": b"",
        "array_is_null": b'{"orgs": null, "users": null, "classes": null, "enrollments": null}',
        "array_is_object": b'{"orgs": {}, "users": {}, "classes": {}, "enrollments": {}}',
        "records_of_every_type": b'{"orgs": [1, "a", null, [], true], "users": [1, "a", null, [], true], "classes": [1, "a", null, [], true], "enrollments": [1, "a", null, [], true]}',
        "missing_sourced_id": json.dumps({c: [{"role": "student", "name": "x", "title": "t"}] for c in ["orgs", "users", "classes", "enrollments"]}).encode(),
        "sourced_id_not_a_string": json.dumps({c: [{"sourcedId": v} for v in [7, None, [], {}, True, ""]] for c in ["orgs", "users", "classes", "enrollments"]}).encode(),
        "wrong_field_types": json.dumps({
            "orgs": [{"sourcedId": "o1", "name": 5, "status": [], "dateLastModified": 3}],
            "users": [{"sourcedId": "u1", "role": 1, "givenName": {}, "email": [], "sms": 5, "enabledUser": [], "agents": "p1"}],
            "classes": [{"sourcedId": "c1", "school": "o1", "title": []}],
            "enrollments": [{"sourcedId": "e1", "user": "u1", "class": 5, "role": {}}],
        }).encode(),
        "agents_with_wrong_shapes": json.dumps({"users": [
            {"sourcedId": "u1", "role": "student", "agents": [1, "p1", None, {"id": "p1"}, {"sourcedId": 5}]},
            {"sourcedId": "p1", "role": "parent", "agents": [{"sourcedId": "u1"}] * 3},
        ]}).encode(),
        "enabled_user_variants": json.dumps({"users": [
            {"sourcedId": "u%d" % i, "role": "student", "enabledUser": v}
            for i, v in enumerate(["maybe", 2, -1, 1.5, "TRUE ", "", None, 1e300])
        ]}).encode(),
        "dates_that_are_not_dates": json.dumps({"orgs": [{"sourcedId": "o%d" % i, "dateLastModified": d} for i, d in enumerate(["yesterday", "2026-13-45T99:99:99Z", "", "9" * 400, "+275760-09-13T00:00:00Z"])]}).encode(),
        "duplicate_sourced_ids": json.dumps({c: [{"sourcedId": "same", "role": "student", "school": {"sourcedId": "o"}, "user": {"sourcedId": "same"}, "class": {"sourcedId": "same"}}] * 5 for c in ["orgs", "users", "classes", "enrollments"]}).encode(),
        "hostile_contact_values": json.dumps({"users": [
            {"sourcedId": "s1", "role": "student", "agents": [{"sourcedId": "p%d" % i} for i in range(6)]},
        ] + [
            {"sourcedId": "p%d" % i, "role": "parent", "email": e, "sms": s}
            for i, (e, s) in enumerate([("a@a.\u0130", "+33100000000"), ("x" * 300 + "@b.com", "+4920100000000000"), ("\u0000@b.com", "\u0000"), ("a@b", "1" * 400), ("", ""), ("A@B.COM", "+44 121 496 0000")])
        ]}).encode(),
        "deep_nesting": b'{"users": [' + b"[" * 10_000 + b"]" * 10_000 + b"]}",
        "huge_numbers": b'{"users": [{"sourcedId": "u1", "enabledUser": 1' + b"0" * 5000 + b', "role": "student"}]}',
        "roles_unknown_and_odd_case": json.dumps({"users": [{"sourcedId": "u%d" % i, "role": r} for i, r in enumerate(["STUDENT", " Teacher ", "parent\u0000", "aide", "proctor", "guardian", "relative", "unknown", "", None])]}).encode(),
        "nul_in_values": json.dumps({c: [{"sourcedId": "x%d" % i, "role": "student", "givenName": "A\u0000", "name": "\u0000", "title": "t\u0000", "school": {"sourcedId": "o\u0000"}, "user": {"sourcedId": "x"}, "class": {"sourcedId": "x"}} for i in range(2)] for c in ["orgs", "users", "classes", "enrollments"]}).encode(),
        "tobedeleted_everything": json.dumps({c: [{"sourcedId": "x", "status": "tobedeleted", "role": "student"}] for c in ["orgs", "users", "classes", "enrollments"]}).encode(),
    }
    for case, data in cases.items():
        write(os.path.join(ROOT, "oneroster", case + ".json"), data)


def text_values() -> None:
    phones = ["", "+", "+1", "++1 202 555 0123", "+33100000000", "+44 121 496 0000", "+4920100000000000",
              "(202) 555-0143", "202-555-0143 ext. 5", "tel:+1-202-555-0143", "+1 202 555 0143;ext=5",
              "\uff0b\uff11\uff12\uff10\uff12\uff15\uff15\uff15\uff10\uff11\uff44\uff13", "\u0660\u0661\u0662", "9" * 400,
              "+1" + "0" * 50, "0", "00", "0044 20 7946 0958", "1-800-FLOWERS", "+1 (202) 555-0143 x\u0000",
              "\u202e+12025550143", "+12025550143\n+12025550144", "0078030000000", "0044 20 7946 0958"]
    emails = ["", "@", "a@", "@b.c", "a@b", "a@b.c", "A@A.\u0130", "a@\u212a.com", "x" * 64 + "@b.com", "x" * 65 + "@b.com",
              "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com", ("a" * 60 + "@" + ("d" * 60 + ".") * 4 + "com"),
              "\"a@b\"@c.com", "a@@b.com", "a..b@c.com", ".a@b.com", "a.@b.com", "a@-b.com", "a@b-.com", "a@b..com",
              "a b@c.com", "a@b.com\u0000", "a@b.com\n", "<a@b.com>", "a@b.com, c@d.com", "a@[127.0.0.1]",
              "\u0000@\u0000.\u0000", "ü@ü.de", "a@xn--bcher-kva.example", "a@b.c\u0301om", "a@b.\ufb00.com"]
    write(os.path.join(ROOT, "phone", "values.json"), json.dumps(phones, ensure_ascii=True, indent=0).encode())
    write(os.path.join(ROOT, "email", "values.json"), json.dumps(emails, ensure_ascii=True, indent=0).encode())


if __name__ == "__main__":
    shutil.rmtree(ROOT, ignore_errors=True)
    sds_sets()
    zips()
    multiparts()
    json_bodies()
    oneroster_pages()
    text_values()
