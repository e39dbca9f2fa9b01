#include <stdio.h>

#ifndef ERRATA
#define ERRATA 0
#endif

int main(void)
{
    printf("hello from a package built for errata %d\n", ERRATA);
    return 0;
}
