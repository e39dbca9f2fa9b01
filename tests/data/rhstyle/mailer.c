#include <stdio.h>
int main(void) { printf("mailer built for %s\n", BRANCH); return 0; }
