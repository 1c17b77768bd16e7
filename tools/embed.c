/* embed NAME IN OUT: writes OUT, a C file defining `const unsigned char NAME[]`
 * (IN's bytes, NUL-terminated) and `const size_t NAME_len`, so a program
 * serves a file of the source tree without reading it at run time.
 * Built for the build machine and run by Meson (tools/meson.build). */
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: embed NAME IN OUT\n");
        return 2;
    }
    FILE *in = fopen(argv[2], "rb"), *out = fopen(argv[3], "w");
    if (!in || !out) {
        perror(in ? argv[3] : argv[2]);
        return 1;
    }
    fprintf(out, "/* Generated from %s by tools/embed.c. */\n"
                 "#include <stddef.h>\n"
                 "extern const unsigned char %s[];\n"
                 "extern const size_t %s_len;\n"
                 "const unsigned char %s[] = {",
            argv[2], argv[1], argv[1], argv[1]);
    size_t n = 0;
    int c;
    while ((c = fgetc(in)) != EOF)
        fprintf(out, "%s%d,", n++ % 20 ? "" : "\n", c);
    fprintf(out, "0};\nconst size_t %s_len = %zu;\n", argv[1], n);
    if (ferror(in) || fclose(out) != 0) {
        fprintf(stderr, "embed: cannot write %s\n", argv[3]);
        return 1;
    }
    fclose(in);
    return 0;
}
