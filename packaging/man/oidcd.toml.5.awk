# Writes oidcd.toml(5) from the commented default configuration, so the manual and the file
# administrators edit say the same thing:
#
#   awk -v version=0.1.0 -f packaging/man/oidcd.toml.5.awk packaging/config/oidcd.toml
#
# (make man does this; make lint-packages fails when the committed page is out of date.)
# The file's shape: a header of "# " comment paragraphs (a line underlined with "# ---" is a
# subsection title), then [section] lines (or "#[provider]"), each key as a comment paragraph
# directly followed by "#key = default" (a list may continue over "#    ..." lines up to "#]"),
# and an "Examples" part of "# ----- begin example: NAME -----" blocks.

function esc(s) {
    gsub(/\\/, "\\e", s)
    if (s ~ /^[.']/) s = "\\&" s
    return s
}

# The text of comment line s: "# text" -> "text", "#" -> "".
function text(s) {
    sub(/^#[ ]?/, "", s)
    return s
}

function flush(    i, t, inpre) {
    inpre = 0
    for (i = 1; i <= npend; i++) {
        t = pend[i]
        if (t ~ /^    /) {
            if (!inpre) { print ".PP"; print ".RS 4"; print ".nf"; inpre = 1 }
            sub(/^    /, "", t)
            print esc(t)
            continue
        }
        if (inpre) { print ".fi"; print ".RE"; inpre = 0; print (t ~ /^   [^ ]/) ? ".sp" : ".PP" }
        if (t ~ /^[0-9]+\. /) {
            match(t, /^[0-9]+\./)
            print ".IP " substr(t, 1, RLENGTH) " 4"
            t = substr(t, RLENGTH + 2)
        } else if (t ~ /^   [^ ]/) {
            sub(/^   /, "", t)
        } else if (i == 1) {
            print ".PP"
        }
        print esc(t)
    }
    if (inpre) { print ".fi"; print ".RE" }
    npend = 0
}

{ line[NR] = $0 }

END {
    print ".\\\" Generated from packaging/config/oidcd.toml by packaging/man/oidcd.toml.5.awk."
    print ".\\\" Do not edit: change the configuration's comments and run make man."
    print ".TH OIDCD.TOML 5 \"\" \"oidcd " version "\" \"File Formats\""
    print ".SH NAME"
    print "oidcd.toml \\- configuration of oidcd, the OpenID Connect login daemon"
    print ".SH SYNOPSIS"
    print "\\fI/etc/oidcd/oidcd.toml\\fR"
    print ".SH DESCRIPTION"
    npend = 0
    examples = 0
    for (n = 1; n <= NR; n++) {
        l = line[n]
        nextl = (n < NR) ? line[n + 1] : ""
        if (examples && l ~ /^# ----- begin example: /) {
            flush()
            name = l
            sub(/^# ----- begin example: /, "", name); sub(/ -----$/, "", name)
            print ".SS \"" esc(name) "\""
            print ".RS 4"
            print ".nf"
            for (n++; n <= NR && line[n] !~ /^# ----- end example/; n++) {
                t = line[n]
                sub(/^#(   ?|$)/, "", t)
                print esc(t)
            }
            print ".fi"
            print ".RE"
            continue
        }
        if (l ~ /^#[ ]?[A-Za-z].*$/ && nextl ~ /^# [-=][-=][-=]+$/) {
            flush()
            title = text(l)
            if (title == "Examples") {
                examples = 1
                print ".SH EXAMPLES"
            } else {
                print ".SS \"" esc(title) "\""
            }
            n++
            continue
        }
        if (l ~ /^#?\[[a-z_]+\][ \t]*$/) {
            sect = l
            sub(/^#/, "", sect)
            if (!options) { flush(); print ".SH OPTIONS"; options = 1 }
            print ".SS " sect
            flush()
            continue
        }
        if (l ~ /^#[a-z_]+ = /) {
            key = l
            sub(/^#/, "", key)
            print ".TP"
            if (key ~ /\[$/) {
                print "\\fB" esc(key) "\\fR"
                print ".nf"
                for (n++; n <= NR && line[n] !~ /^#\]/; n++) {
                    t = line[n]
                    sub(/^#/, "", t)
                    print esc(t)
                }
                print "]"
                print ".fi"
            } else {
                print "\\fB" esc(key) "\\fR"
            }
            # The key's description: the comment paragraph just before it, without .PP.
            for (i = 1; i <= npend; i++) {
                t = pend[i]
                if (t ~ /^    /) { print ".RS 4"; print ".nf"; sub(/^    /, "", t); print esc(t); print ".fi"; print ".RE"; continue }
                print esc(t)
            }
            npend = 0
            continue
        }
        if (l ~ /^[ \t]*$/ || l ~ /^#[ \t]*$/) {
            flush()
            continue
        }
        if (l ~ /^#/) {
            pend[++npend] = text(l)
        }
    }
    flush()
    print ".SH FILES"
    print ".TP"
    print "\\fI/etc/oidcd/oidcd.toml\\fR"
    print "The configuration, installed root:root 0600 and kept on upgrades."
    print ".TP"
    print "\\fI/usr/share/doc/oidcd/\\fR"
    print "README files of the package."
    print ".SH SEE ALSO"
    print "\\fBoidcd\\fR(8), \\fBoidcctl\\fR(8), \\fBpam_oidc\\fR(8), \\fBnss_oidc\\fR(8)"
}
