#include <stdio.h>
#ifdef USE_MATH
#include <math.h>
#endif

int main(int argc, char **argv)
{
#ifdef USE_MATH
    printf("variant %d: %.3f\n", VARIANT, sqrt((double) argc + 1.0));
#else
    printf("variant %d\n", VARIANT);
#endif
    return 0;
}
