#ifndef LIBJAIL_NSENTER_H
#define LIBJAIL_NSENTER_H

#define LIBJAIL_NSENTER_ENV "_LIBJAIL_NSENTER"

enum {
	LIBJAIL_STEP_PARSE = 1,
	LIBJAIL_STEP_SETNS = 2,
	LIBJAIL_STEP_BECOME_ROOT = 3,
	LIBJAIL_STEP_UNSHARE = 4,
	LIBJAIL_STEP_TIMENS = 5,
	LIBJAIL_STEP_PDEATHSIG = 6,
	LIBJAIL_STEP_USERMAP = 7,
	LIBJAIL_STEP_JAIL = 8,
	LIBJAIL_STEP_FORKPID = 9,
};

struct libjail_nsenter_result {
	int failed;
	int step;
	int nstype;
	int err;
};

extern struct libjail_nsenter_result libjail_nsenter_result;

#endif
