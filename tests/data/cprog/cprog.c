#include <stdio.h>
int main(void) { printf("cprog errata %d\n", ERRATA); return 0; }
